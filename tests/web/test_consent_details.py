"""How the consent page words RFC 9396 details: the reader's locale, the fallbacks, the MAC."""

from __future__ import annotations

import pytest

from tokensmith.web.ui.details import details_mac, details_match, locale_of, present


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en_US"),
        ("", "en_US"),
        ("de-DE,de;q=0.9,en;q=0.8", "de_DE"),
        ("en;q=0.5, fr-CH;q=0.9", "fr_CH"),
        ("xx-YY, pt-BR", "pt_BR"),
        ("*", "en_US"),
        ("de;q=0, it", "it"),
        ("de;q=abc, es", "es"),
        ("a" * 5000, "en_US"),
    ],
)
def test_the_readers_locale_comes_from_accept_language(header: str | None, locale: str) -> None:
    assert str(locale_of(header)) == locale


def test_a_payment_shown_in_yen_has_no_decimals() -> None:
    [shown] = present(
        [
            {
                "type": "payment_initiation",
                "instructedAmount": {"currency": "JPY", "amount": "5000"},
                "creditorName": "Kissa",
                "creditorAccount": {"other": {"identification": "1234567", "schemeName": "JP"}},
            }
        ],
        locale_of("ja-JP"),
    )
    assert shown.amount == "￥5,000" and shown.payee == "Kissa"
    assert ("To account", "1234567 (JP)") in shown.lines


def test_a_replaced_built_in_type_is_shown_as_it_is() -> None:
    """An operator's own schema for payment_initiation may lack the built-in fields."""
    [shown] = present([{"type": "payment_initiation", "ref": "x"}], locale_of("en"))
    assert shown.kind == "other" and ("ref", "x") in shown.lines


def test_the_mac_binds_the_details_to_the_session() -> None:
    mac = details_mac("csrf-1", '[{"type":"a"}]')
    assert details_match("csrf-1", '[{"type":"a"}]', mac)
    assert not details_match("csrf-1", '[{"type":"b"}]', mac)
    assert not details_match("csrf-2", '[{"type":"a"}]', mac)
    assert not details_match("csrf-1", None, mac)
    assert not details_match("csrf-1", '[{"type":"a"}]', None)
