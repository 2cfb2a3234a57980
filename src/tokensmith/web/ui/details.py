"""RFC 9396 ``authorization_details`` as a person reads them on the consent page.

Each object becomes a :class:`Shown` card: a payment's amount, formatted for the reader's
locale (``Accept-Language``, with Babel), and its payee large; account access as a list
of what the app may read and of which accounts; a type the server does not know how to
present, its fields as they are. The consent form carries a MAC of the details shown
(:func:`details_mac`), keyed by the session's CSRF token, and the decision refuses a form
whose details are not those (:func:`details_match`): the user approves what they saw.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_name

__all__ = ["DETAILS_MAC_FIELD", "Shown", "details_mac", "details_match", "locale_of", "present"]

#: The consent form's field with the MAC of the details shown.
DETAILS_MAC_FIELD = "details_mac"
DEFAULT_LOCALE = Locale("en", "US")

#: What each account-information action lets the app do, in words.
ACTION_WORDS = {
    "list_accounts": "See the list of your accounts",
    "read_balances": "See your account balances",
    "read_transactions": "See your transactions",
    "read_account_details": "See your account details",
    "initiate": "Make this payment",
    "status": "Check the payment\u2019s status",
    "cancel": "Cancel the payment",
}


@dataclass(frozen=True, slots=True)
class Shown:
    """One ``authorization_details`` object on the consent page."""

    kind: str
    title: str
    #: A payment's amount, formatted (``€1,234.50``), and its payee.
    amount: str | None = None
    currency_name: str | None = None
    payee: str | None = None
    #: (label, value) lines under the headline.
    lines: list[tuple[str, str]] = field(default_factory=list)
    #: What the app may do, in words.
    actions: list[str] = field(default_factory=list)
    #: Accounts concerned, formatted.
    accounts: list[str] = field(default_factory=list)


def locale_of(accept_language: str | None) -> Locale:
    """The first locale of an ``Accept-Language`` header (RFC 9110 §12.5.4) Babel knows, by
    q-value; else en-US."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        try:
            return Locale.parse(tag[:35], sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    return DEFAULT_LOCALE


def _account(account: Any) -> str:
    """An IBAN in groups of four (ISO 13616's paper format), else the other identification."""
    if not isinstance(account, Mapping):
        return str(account)
    iban = account.get("iban")
    if isinstance(iban, str):
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    other = account.get("other")
    if isinstance(other, Mapping):
        scheme = other.get("schemeName")
        ident = str(other.get("identification", ""))
        return f"{ident} ({scheme})" if scheme else ident
    return json.dumps(account, ensure_ascii=False)


def _actions(obj: Mapping[str, Any]) -> list[str]:
    return [ACTION_WORDS.get(str(a), str(a)) for a in obj.get("actions") or ()]


def _payment(obj: Mapping[str, Any], locale: Locale) -> Shown:
    amount = obj["instructedAmount"]
    currency = str(amount["currency"])
    lines = [("To account", _account(obj.get("creditorAccount")))]
    if obj.get("remittanceInformationUnstructured"):
        lines.append(("Reference", str(obj["remittanceInformationUnstructured"])))
    if obj.get("debtorAccount"):
        lines.append(("From account", _account(obj["debtorAccount"])))
    return Shown(
        kind="payment_initiation",
        title="Payment",
        amount=format_currency(Decimal(str(amount["amount"])), currency, locale=locale),
        currency_name=get_currency_name(currency, locale=locale),
        payee=str(obj["creditorName"]),
        lines=lines,
        actions=_actions(obj),
    )


def _account_information(obj: Mapping[str, Any], locale: Locale) -> Shown:
    lines = []
    if obj.get("expiry"):
        until = format_date(date.fromisoformat(str(obj["expiry"])), "long", locale=locale)
        lines.append(("Until", until))
    accounts = [_account(a) for a in obj.get("accounts") or ()]
    return Shown(
        kind="account_information",
        title="Access to your accounts",
        lines=lines,
        actions=_actions(obj),
        accounts=accounts or ["All your accounts"],
    )


def _other(obj: Mapping[str, Any]) -> Shown:
    lines = [
        (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
        for k, v in obj.items()
        if k not in ("type", "actions")
    ]
    return Shown(kind="other", title=str(obj["type"]), lines=lines, actions=_actions(obj))


def present(details: list[dict[str, Any]], locale: Locale) -> list[Shown]:
    """Each object, as the consent page shows it."""
    shown = []
    for obj in details:
        kind = obj.get("type")
        try:
            if kind == "payment_initiation":
                shown.append(_payment(obj, locale))
                continue
            if kind == "account_information":
                shown.append(_account_information(obj, locale))
                continue
        except (KeyError, TypeError, ValueError, ArithmeticError):
            pass  # a registered schema that replaced a built-in one: shown as it is
        shown.append(_other(obj))
    return shown


def details_mac(csrf: str, details: str | None) -> str:
    """The MAC the consent form carries of the details it shows (none: the empty text)."""
    message = b"tokensmith-authorization-details\0" + (details or "").encode()
    return hmac.new(csrf.encode(), message, hashlib.sha256).hexdigest()


def details_match(csrf: str, details: str | None, presented: str | None) -> bool:
    """Whether the decision's details are those the consent page showed."""
    return hmac.compare_digest(details_mac(csrf, details), presented or "")
