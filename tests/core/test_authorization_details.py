"""RFC 9396 authorization_details: the built-in types, a registered one, the client's
types, the limits, narrowing (§6.2) and the type registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tokensmith.core.authorization_details import (
    BUILTIN_TYPES,
    DetailsTypes,
    TypeRegistry,
    canonical,
    load,
    narrow,
    schemas_of_file,
)
from tokensmith.core.clock import FrozenClock
from tokensmith.core.errors import InvalidAuthorizationDetails
from tokensmith.storage.memory import MemoryStore

IBAN = "DE02120300000000202051"
PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status", "cancel"],
    "locations": ["https://example.com/payments"],
    "instructedAmount": {"currency": "EUR", "amount": "123.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": IBAN},
    "remittanceInformationUnstructured": "Ref Number Merchant",
}
ACCOUNTS: dict[str, Any] = {
    "type": "account_information",
    "actions": ["list_accounts", "read_balances", "read_transactions"],
    "locations": ["https://example.com/accounts"],
    "accounts": [{"iban": IBAN}, {"other": {"identification": "12345", "schemeName": "BBAN"}}],
    "expiry": "2027-03-31",
}
#: An operator's own type (RFC 9396 §2's customer_information example, trimmed).
CUSTOMER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "actions"],
    "properties": {
        "type": {"const": "customer_information"},
        "actions": {"type": "array", "items": {"enum": ["read", "write"]}, "minItems": 1},
        "datatypes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
CUSTOMER = {"type": "customer_information", "actions": ["read"], "datatypes": ["contacts"]}

TYPES = DetailsTypes.of({"customer_information": CUSTOMER_SCHEMA})


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``path`` (a/b/c) set to ``value`` (``...``: removed)."""
    copy = json.loads(json.dumps(base))
    *parents, last = path.split("/")
    node = copy
    for part in parents:
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return copy


VALID = [
    pytest.param([PAYMENT], id="payment"),
    pytest.param([changed(PAYMENT, "actions", ...)], id="payment-without-actions"),
    pytest.param(
        [changed(PAYMENT, "instructedAmount", {"currency": "JPY", "amount": "5000"})],
        id="payment-in-yen",
    ),
    pytest.param(
        [changed(PAYMENT, "creditorAccount", {"other": {"identification": "GB-SORT-123"}})],
        id="payment-to-another-account-kind",
    ),
    pytest.param([ACCOUNTS], id="accounts"),
    pytest.param(
        [{"type": "account_information", "actions": ["read_balances"]}], id="accounts-min"
    ),
    pytest.param([PAYMENT, ACCOUNTS, CUSTOMER], id="three-types"),
    pytest.param([CUSTOMER], id="registered-type"),
    pytest.param([changed(CUSTOMER, "datatypes", ...)], id="registered-type-min"),
]

INVALID = [
    pytest.param("not json", "not JSON", id="not-json"),
    pytest.param("{}", "non-empty array", id="object-not-array"),
    pytest.param("[]", "non-empty array", id="empty-array"),
    pytest.param('["payment_initiation"]', "not an object", id="string-entry"),
    pytest.param('[{"actions":["read"]}]', "'type' is a required property", id="no-type"),
    pytest.param('[{"type":7}]', "7 is not of type 'string'", id="type-not-string"),
    pytest.param('[{"type":"wire_transfer"}]', "unknown type 'wire_transfer'", id="unknown-type"),
    pytest.param(
        [changed(PAYMENT, "locations", "https://example.com")], "locations", id="locations-string"
    ),
    pytest.param([changed(PAYMENT, "identifier", "")], "identifier", id="empty-identifier"),
    pytest.param([changed(PAYMENT, "creditorName", ...)], "creditorName", id="no-payee"),
    pytest.param([changed(PAYMENT, "instructedAmount", ...)], "instructedAmount", id="no-amount"),
    pytest.param(
        [changed(PAYMENT, "instructedAmount/amount", 123.5)], "amount", id="amount-number"
    ),
    pytest.param(
        [changed(PAYMENT, "instructedAmount/amount", "-5.00")], "amount", id="amount-negative"
    ),
    pytest.param([changed(PAYMENT, "instructedAmount/amount", "0.00")], "amount", id="amount-zero"),
    pytest.param(
        [changed(PAYMENT, "instructedAmount/amount", "1e3")], "amount", id="amount-exponent"
    ),
    pytest.param(
        [changed(PAYMENT, "instructedAmount/amount", "10.123")],
        "more decimals than EUR",
        id="amount-too-precise",
    ),
    pytest.param(
        [changed(PAYMENT, "instructedAmount", {"currency": "JPY", "amount": "10.5"})],
        "more decimals than JPY",
        id="yen-with-cents",
    ),
    pytest.param(
        [changed(PAYMENT, "instructedAmount/currency", "eur")], "currency", id="currency-lowercase"
    ),
    pytest.param(
        [changed(PAYMENT, "instructedAmount/currency", "ABC")],
        "not an ISO 4217 currency",
        id="currency-unknown",
    ),
    pytest.param(
        [changed(PAYMENT, "creditorAccount/iban", "DE03120300000000202051")],
        "check digits",
        id="iban-check-digits",
    ),
    pytest.param(
        [changed(PAYMENT, "creditorAccount", {"iban": IBAN, "other": {"identification": "x"}})],
        "creditorAccount",
        id="account-two-kinds",
    ),
    pytest.param([changed(PAYMENT, "actions", ["steal"])], "actions", id="payment-bad-action"),
    pytest.param([changed(PAYMENT, "fee", "1.00")], "fee", id="payment-unknown-field"),
    pytest.param([changed(ACCOUNTS, "actions", ...)], "actions", id="accounts-no-actions"),
    pytest.param(
        [changed(ACCOUNTS, "actions", ["read_balances", "read_balances"])],
        "non-unique",
        id="accounts-repeated-action",
    ),
    pytest.param([changed(ACCOUNTS, "expiry", "31.03.2027")], "expiry", id="expiry-not-iso"),
    pytest.param([changed(ACCOUNTS, "accounts", [])], "accounts", id="accounts-empty"),
    pytest.param([changed(CUSTOMER, "actions", ["delete"])], "actions", id="registered-refuses"),
    pytest.param([changed(CUSTOMER, "extra", 1)], "extra", id="registered-extra-field"),
]


@pytest.mark.parametrize("details", VALID)
def test_valid_details_come_back_canonical(details: list[dict[str, Any]]) -> None:
    text = TYPES.parse(json.dumps(details, indent=2))
    assert load(text) == details
    assert text == canonical(details)
    assert '", "' not in text and '": ' not in text  # no spaces between tokens


@pytest.mark.parametrize(("raw", "says"), INVALID)
def test_invalid_details_are_invalid_authorization_details(raw: Any, says: str) -> None:
    text = raw if isinstance(raw, str) else json.dumps(raw)
    with pytest.raises(InvalidAuthorizationDetails) as info:
        TYPES.parse(text)
    assert info.value.error == "invalid_authorization_details"
    assert info.value.status == 400
    assert says in info.value.description


def test_the_built_in_types_alone_do_not_know_a_registered_one() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="unknown type 'customer_information'"):
        DetailsTypes().parse(json.dumps([CUSTOMER]))


@pytest.mark.parametrize(
    ("allowed", "ok"),
    [(None, True), (("payment_initiation",), True), (("account_information",), False), ((), False)],
)
def test_a_client_may_be_held_to_some_types(allowed: tuple[str, ...] | None, ok: bool) -> None:
    raw = json.dumps([PAYMENT])
    if ok:
        TYPES.parse(raw, allowed)
        return
    with pytest.raises(InvalidAuthorizationDetails, match="may not request 'payment_initiation'"):
        TYPES.parse(raw, allowed)


def test_too_many_objects_or_bytes_are_refused() -> None:
    small = DetailsTypes.of(max_entries=2, max_bytes=1024)
    small.parse(json.dumps([PAYMENT, ACCOUNTS]))
    with pytest.raises(InvalidAuthorizationDetails, match="more than 2 objects"):
        small.parse(json.dumps([PAYMENT, ACCOUNTS, PAYMENT]))
    with pytest.raises(InvalidAuthorizationDetails, match="longer than 1024 bytes"):
        small.parse(json.dumps([changed(PAYMENT, "creditorName", "x" * 1100)]))


def test_supported_types_are_sorted_for_the_metadata() -> None:
    assert TYPES.supported == ["account_information", "customer_information", "payment_initiation"]


def test_a_bad_schema_or_type_name_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        DetailsTypes.of({"odd": {"type": "no-such-type"}})
    with pytest.raises(ValueError, match="not a valid type name"):
        DetailsTypes.of({"with space": {"type": "object"}})


# -- narrowing (RFC 9396 §6.2) ------------------------------------------------------------

GRANTED = canonical([PAYMENT, ACCOUNTS])


@pytest.mark.parametrize(
    "asked",
    [
        pytest.param(None, id="absent-means-all"),
        pytest.param([PAYMENT], id="one-of-two"),
        pytest.param([ACCOUNTS, PAYMENT], id="both-reordered"),
        pytest.param([changed(ACCOUNTS, "actions", ["read_balances"])], id="fewer-actions"),
        pytest.param([changed(ACCOUNTS, "accounts", [{"iban": IBAN}])], id="fewer-accounts"),
    ],
)
def test_a_token_request_may_narrow_what_was_granted(asked: list[Any] | None) -> None:
    got = narrow(TYPES, GRANTED, None if asked is None else json.dumps(asked), None)
    assert load(got) == (load(GRANTED) if asked is None else asked)


@pytest.mark.parametrize(
    "asked",
    [
        pytest.param([changed(PAYMENT, "instructedAmount/amount", "999.00")], id="more-money"),
        pytest.param([changed(PAYMENT, "creditorName", "Mallory")], id="other-payee"),
        pytest.param([changed(ACCOUNTS, "actions", ["read_account_details"])], id="new-action"),
        pytest.param([changed(ACCOUNTS, "expiry", "2030-01-01")], id="later-expiry"),
        pytest.param([changed(ACCOUNTS, "expiry", ...)], id="expiry-dropped"),
        pytest.param(
            [changed(ACCOUNTS, "accounts", [{"iban": "GB82WEST12345698765432"}])],
            id="other-account",
        ),
        pytest.param([CUSTOMER], id="type-not-granted"),
    ],
)
def test_a_token_request_may_not_widen_what_was_granted(asked: list[Any]) -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="was not granted"):
        narrow(TYPES, GRANTED, json.dumps(asked), None)


# -- the configured file and the registry --------------------------------------------------


def test_types_come_from_a_json_or_toml_file(tmp_path: Path) -> None:
    as_json = tmp_path / "types.json"
    as_json.write_text(json.dumps({"customer_information": CUSTOMER_SCHEMA}))
    assert schemas_of_file(str(as_json)) == {"customer_information": CUSTOMER_SCHEMA}
    as_toml = tmp_path / "types.toml"
    as_toml.write_text('[customer_information]\ntype = "object"\nrequired = ["type"]\n')
    assert schemas_of_file(str(as_toml)) == {
        "customer_information": {"type": "object", "required": ["type"]}
    }
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON or TOML"):
        schemas_of_file(str(broken))
    with pytest.raises(ValueError, match="cannot be read"):
        schemas_of_file(str(tmp_path / "missing.json"))


async def test_the_registry_adds_lists_and_removes_types(tmp_path: Path) -> None:
    store, clock = MemoryStore(), FrozenClock(1000.0)
    registry = TypeRegistry(store, clock)
    await registry.add("customer_information", json.dumps(CUSTOMER_SCHEMA))
    listed = {t.name: t.source for t in await registry.listing()}
    assert listed == {
        "account_information": "built-in",
        "customer_information": "registered",
        "payment_initiation": "built-in",
    }
    with pytest.raises(ValueError, match="is built in"):
        await registry.add("payment_initiation", "{}")
    with pytest.raises(ValueError, match="not JSON"):
        await registry.add("x", "{")
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        await registry.add("x", '{"type": 5}')
    assert await registry.remove("customer_information")
    assert not await registry.remove("customer_information")
    assert [t.name for t in await registry.listing()] == sorted(BUILTIN_TYPES)


def test_registered_types_are_replaced_as_a_whole_and_a_bad_one_changes_nothing() -> None:
    types = DetailsTypes.of({"customer_information": CUSTOMER_SCHEMA})
    types.register({"loyalty": {"type": "object"}})
    assert types.supported == [
        "account_information",
        "customer_information",
        "loyalty",
        "payment_initiation",
    ]
    types.parse(json.dumps([{"type": "loyalty"}]))
    with pytest.raises(ValueError):
        types.register({"odd": {"type": "no-such-type"}})
    types.parse(json.dumps([{"type": "loyalty"}]))  # still the last good set
    types.register({})
    assert "loyalty" not in types.supported and "customer_information" in types.supported
    with pytest.raises(InvalidAuthorizationDetails, match="unknown type"):
        types.parse(json.dumps([{"type": "loyalty"}]))
