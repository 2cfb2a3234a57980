"""Rich Authorization Requests (RFC 9396), without HTTP.

A client asks for fine-grained authorization with ``authorization_details``: a JSON array
of objects, each with a ``type`` (§2) and the fields that type defines, plus the common
fields of §2.2 (``locations``, ``actions``, ``datatypes``, ``identifier``,
``privileges``). Each type is described by a JSON Schema (validated with ``jsonschema``):
two are built in (``payment_initiation`` and ``account_information``, modelled on §2's
examples and the Berlin Group / UK Open Banking conventions), the operator registers more
in a file (``authorization_details_types``) or with the CLI (stored, migration 0013).

:class:`DetailsTypes` parses and validates a request's ``authorization_details`` (§5:
an unknown type, an object its schema refuses, a type the client may not use (§10) or too
much of it is ``invalid_authorization_details``) into its canonical JSON text, the form in
which it is stored with the pushed request, the code, the token family and the tokens.

What the user approved is what the tokens carry: the token response (§7), the JWT claim
``authorization_details`` and introspection (§9.1). A later token request may narrow it
(§6.1, §6.2; :func:`narrow`), never widen it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import get_currency_precision, list_currencies
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tokensmith.core.clock import Clock
from tokensmith.core.errors import InvalidAuthorizationDetails
from tokensmith.core.ports import DetailsTypeStore

log = logging.getLogger("tokensmith.details")

__all__ = [
    "ACCOUNT_INFORMATION",
    "BUILTIN_TYPES",
    "COMMON_FIELDS",
    "DEFAULT_TYPES",
    "PAYMENT_INITIATION",
    "DetailsTypes",
    "InvalidAuthorizationDetails",
    "RegisteredType",
    "TypeRegistry",
    "canonical",
    "check_type_name",
    "load",
    "narrow",
    "refresh_types_forever",
    "schemas_of_file",
    "schemas_of_store",
]

#: At most this many objects in one ``authorization_details`` (§5: the server decides).
MAX_ENTRIES = 10
#: At most this many bytes of JSON text in one ``authorization_details``.
MAX_BYTES = 8192
#: What a registered type may be called: a short name or a URI (§2: ``type`` is a string).
_TYPE_NAME = re.compile(r"[A-Za-z0-9_.:/#-]{1,200}")


_STRINGS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 2000},
    "maxItems": 50,
}

#: §2.2: the fields every type shares, and what they are when present.
COMMON_FIELDS: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "minLength": 1, "maxLength": 200},
        "locations": _STRINGS,
        "actions": _STRINGS,
        "datatypes": _STRINGS,
        "identifier": {"type": "string", "minLength": 1, "maxLength": 200},
        "privileges": _STRINGS,
    },
}

_ACCOUNT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "iban": {"type": "string", "pattern": r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"},
        "bic": {"type": "string", "pattern": r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$"},
        "other": {
            "type": "object",
            "required": ["identification"],
            "properties": {
                "identification": {"type": "string", "minLength": 1, "maxLength": 70},
                "schemeName": {"type": "string", "minLength": 1, "maxLength": 70},
            },
            "additionalProperties": False,
        },
    },
    "oneOf": [{"required": ["iban"]}, {"required": ["other"]}],
    "additionalProperties": False,
}

#: RFC 9396 §2's payment example, with the Berlin Group's field names: an amount as a
#: decimal string in an ISO 4217 currency, the payee and their account.
PAYMENT_INITIATION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "instructedAmount", "creditorName", "creditorAccount"],
    "properties": {
        "type": {"const": "payment_initiation"},
        "locations": _STRINGS,
        "actions": {
            "type": "array",
            "items": {"enum": ["initiate", "status", "cancel"]},
            "minItems": 1,
            "uniqueItems": True,
        },
        "datatypes": _STRINGS,
        "identifier": {"type": "string", "minLength": 1, "maxLength": 200},
        "privileges": _STRINGS,
        "instructedAmount": {
            "type": "object",
            "required": ["currency", "amount"],
            "properties": {
                "currency": {"type": "string", "pattern": r"^[A-Z]{3}$"},
                "amount": {
                    "type": "string",
                    "pattern": r"^(?!0+(\.0+)?$)(0|[1-9][0-9]{0,14})(\.[0-9]{1,5})?$",
                },
            },
            "additionalProperties": False,
        },
        "creditorName": {"type": "string", "minLength": 1, "maxLength": 140},
        "creditorAccount": _ACCOUNT,
        "debtorAccount": _ACCOUNT,
        "remittanceInformationUnstructured": {"type": "string", "maxLength": 140},
    },
    "additionalProperties": False,
}

#: RFC 9396 §2's account information example: which accounts, what may be done with them
#: (Berlin Group style action names), and until when (``expiry``, an ISO 8601 date).
ACCOUNT_INFORMATION: dict[str, Any] = {
    "type": "object",
    "required": ["type", "actions"],
    "properties": {
        "type": {"const": "account_information"},
        "locations": _STRINGS,
        "actions": {
            "type": "array",
            "items": {
                "enum": [
                    "list_accounts",
                    "read_balances",
                    "read_transactions",
                    "read_account_details",
                ]
            },
            "minItems": 1,
            "uniqueItems": True,
        },
        "datatypes": _STRINGS,
        "identifier": {"type": "string", "minLength": 1, "maxLength": 200},
        "privileges": _STRINGS,
        "accounts": {"type": "array", "items": _ACCOUNT, "minItems": 1, "maxItems": 20},
        "expiry": {
            "type": "string",
            "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        },
    },
    "additionalProperties": False,
}

#: The types every server knows; a registered type of the same name replaces one.
BUILTIN_TYPES: Mapping[str, Mapping[str, Any]] = {
    "payment_initiation": PAYMENT_INITIATION,
    "account_information": ACCOUNT_INFORMATION,
}

_COMMON = Draft202012Validator(COMMON_FIELDS)
_CURRENCIES = frozenset(list_currencies())


def check_type_name(name: str) -> str:
    """``name`` if it can name a type, else :class:`ValueError`."""
    if _TYPE_NAME.fullmatch(name) is None:
        raise ValueError(f"{name!r} is not a valid type name (letters, digits, _ . : / # -)")
    return name


def check_schema(schema: Any) -> Mapping[str, Any]:
    """``schema`` if it is a JSON Schema object (draft 2020-12), else :class:`ValueError`."""
    if not isinstance(schema, dict):
        raise ValueError("a type's schema must be a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
    return schema


def canonical(details: Iterable[Mapping[str, Any]]) -> str:
    """The JSON text stored and compared: keys sorted, no spaces, non-ASCII kept."""
    return json.dumps(list(details), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load(text: str) -> list[dict[str, Any]]:
    """Stored canonical text back to objects."""
    value: list[dict[str, Any]] = json.loads(text)
    return value


def _iban_valid(iban: str) -> bool:
    """ISO 13616 check digits: the IBAN, rearranged, is 1 modulo 97."""
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _accounts_of(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = [obj[k] for k in ("creditorAccount", "debtorAccount") if isinstance(obj.get(k), dict)]
    accounts = obj.get("accounts")
    if isinstance(accounts, list):
        found += [a for a in accounts if isinstance(a, dict)]
    return found


def _built_in_checks(obj: Mapping[str, Any]) -> str | None:
    """What a schema cannot say: a real ISO 4217 currency, no more decimals than it has,
    IBAN check digits. The reason an object is refused, else ``None``."""
    amount = obj.get("instructedAmount")
    if obj.get("type") == "payment_initiation" and isinstance(amount, dict):
        currency = amount["currency"]
        if currency not in _CURRENCIES:
            return f"{currency} is not an ISO 4217 currency"
        try:
            exponent = Decimal(amount["amount"]).as_tuple().exponent
        except InvalidOperation:  # pragma: no cover - the schema's pattern refused it
            return "the amount is not a decimal number"
        if isinstance(exponent, int) and -exponent > get_currency_precision(currency):
            return f"the amount has more decimals than {currency} has"
    for account in _accounts_of(obj):
        iban = account.get("iban")
        if isinstance(iban, str) and not _iban_valid(iban):
            return "an IBAN's check digits are wrong"
    return None


@dataclass(frozen=True, slots=True)
class _TypeSet:
    """Every accepted type's schema and its compiled validator, replaced as one."""

    schemas: Mapping[str, Mapping[str, Any]]
    validators: Mapping[str, Draft202012Validator]

    @classmethod
    def of(cls, schemas: Mapping[str, Mapping[str, Any]]) -> _TypeSet:
        validators = {}
        for name, schema in schemas.items():
            check_type_name(name)
            validators[name] = Draft202012Validator(check_schema(schema))
        return cls(dict(schemas), validators)


class DetailsTypes:
    """The ``authorization_details`` types this server accepts, each with its schema: the
    built-in ones, a configured file's, then those registered with the CLI, which
    :meth:`register` replaces while the server runs (:func:`refresh_types_forever`). A
    request is checked against one set, the old or the new, never a mix of both."""

    __slots__ = ("_base", "_set", "max_bytes", "max_entries")

    def __init__(
        self,
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        base = dict(BUILTIN_TYPES) if schemas is None else dict(schemas)
        self._set = _TypeSet.of(base)
        #: the types no registration replaces (built in, the file's)
        self._base: Mapping[str, Mapping[str, Any]] = base
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    @classmethod
    def of(cls, *layers: Mapping[str, Mapping[str, Any]], **limits: int) -> DetailsTypes:
        """The built-in types, then each layer's (a later one replaces a type of the same
        name): the configured file's; the CLI's come with :meth:`register`."""
        schemas: dict[str, Mapping[str, Any]] = dict(BUILTIN_TYPES)
        for layer in layers:
            schemas.update(layer)
        return cls(schemas, **limits)

    @property
    def schemas(self) -> Mapping[str, Mapping[str, Any]]:
        return self._set.schemas

    def register(self, registered: Mapping[str, Mapping[str, Any]]) -> None:
        """Accept the fixed types and ``registered`` (the CLI's, replacing a file's type of
        the same name), as of now; :class:`ValueError` (nothing changed) if one is bad."""
        self._set = _TypeSet.of({**self._base, **registered})

    @property
    def supported(self) -> list[str]:
        """RFC 9396 §10 ``authorization_details_types_supported``."""
        return sorted(self.schemas)

    def parse(self, raw: str, allowed: Iterable[str] | None = None) -> str:
        """§5: ``raw`` (the request's ``authorization_details``) validated, as canonical
        JSON text. ``allowed``: the types the client may use (§10); ``None``: any."""
        if len(raw.encode()) > self.max_bytes:
            raise InvalidAuthorizationDetails(
                f"authorization_details is longer than {self.max_bytes} bytes"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            raise InvalidAuthorizationDetails("authorization_details is not JSON") from None
        if not isinstance(value, list) or not value:
            raise InvalidAuthorizationDetails("authorization_details must be a non-empty array")
        if len(value) > self.max_entries:
            raise InvalidAuthorizationDetails(
                f"authorization_details has more than {self.max_entries} objects"
            )
        permitted = None if allowed is None else frozenset(allowed)
        types = self._set
        for index, obj in enumerate(value):
            self._check(index, obj, permitted, types)
        return canonical(value)

    def _check(
        self, index: int, obj: Any, permitted: frozenset[str] | None, types: _TypeSet
    ) -> None:
        where = f"authorization_details[{index}]"
        if not isinstance(obj, dict):
            raise InvalidAuthorizationDetails(f"{where} is not an object")
        error = next(iter(_COMMON.iter_errors(obj)), None)
        if error is not None:
            raise InvalidAuthorizationDetails(f"{where}: {_say(error)}")
        kind = obj["type"]
        validator = types.validators.get(kind)
        if validator is None:
            raise InvalidAuthorizationDetails(f"{where}: unknown type {kind!r}")
        if permitted is not None and kind not in permitted:
            raise InvalidAuthorizationDetails(f"{where}: this app may not request {kind!r}")
        error = next(iter(validator.iter_errors(obj)), None)
        if error is not None:
            raise InvalidAuthorizationDetails(f"{where}: {_say(error)}")
        problem = _built_in_checks(obj) if kind in BUILTIN_TYPES else None
        if problem is not None and types.schemas[kind] is BUILTIN_TYPES[kind]:
            raise InvalidAuthorizationDetails(f"{where}: {problem}")


def _say(error: Any) -> str:
    """A schema error in a line: where in the object, and what."""
    path = "/".join(str(p) for p in error.absolute_path)
    message = str(error.message)
    if len(message) > 200:
        message = message[:200] + "\u2026"
    return f"{path}: {message}" if path else message


def _covers(granted: Any, requested: Any) -> bool:
    """Whether ``requested`` asks for no more than ``granted`` (§6.2): the same value, or,
    for an object, the same fields each covered, or, for an array, a non-empty subset."""
    if isinstance(granted, dict) and isinstance(requested, dict):
        return granted.keys() == requested.keys() and all(
            _covers(granted[k], requested[k]) for k in granted
        )
    if isinstance(granted, list) and isinstance(requested, list):
        return bool(requested) and all(any(_covers(g, r) for g in granted) for r in requested)
    return bool(type(granted) is type(requested) and granted == requested)


def narrow(
    types: DetailsTypes, granted: str, raw: str | None, allowed: Iterable[str] | None
) -> str:
    """§6.1, §6.2: the details a token request asks for, of those granted: all of them when
    ``raw`` is absent, else ``raw`` if each of its objects is covered by a granted one
    (equal, or with fewer array entries: ``actions``, ``accounts``, ``locations``...).
    Anything more is ``invalid_authorization_details``."""
    if raw is None:
        return granted
    requested = load(types.parse(raw, allowed))
    have = load(granted)
    for index, obj in enumerate(requested):
        if not any(_covers(g, obj) for g in have):
            raise InvalidAuthorizationDetails(
                f"authorization_details[{index}] was not granted (RFC 9396 §6.2)"
            )
    return canonical(requested)


def schemas_of_file(path: str) -> dict[str, Mapping[str, Any]]:
    """The types of a JSON or TOML file (by its suffix ``.toml``) mapping each type to its
    JSON Schema. :class:`ValueError` says what is wrong with it."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        data = tomllib.loads(raw.decode()) if path.endswith(".toml") else json.loads(raw)
    except OSError as exc:
        raise ValueError(f"{path} cannot be read: {exc.strerror}") from None
    except ValueError as exc:  # JSON, TOML and UTF-8 errors alike
        raise ValueError(f"{path} is not valid JSON or TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map each type to its JSON Schema")
    return {check_type_name(k): check_schema(v) for k, v in data.items()}


def schemas_of_store(rows: Mapping[str, str]) -> dict[str, Mapping[str, Any]]:
    """The types registered with the CLI, from their stored JSON text."""
    return {name: check_schema(json.loads(text)) for name, text in rows.items()}


@dataclass(frozen=True, slots=True)
class RegisteredType:
    """A type as ``tokensmith authorization-details types list`` shows it."""

    name: str
    #: ``built-in``, ``file`` (the configured file) or ``registered`` (the CLI's)
    source: str
    schema: Mapping[str, Any]


class TypeRegistry:
    """The types registered with the CLI (stored; migration 0013), and the listing of all
    of them. A running server reads them at start."""

    def __init__(self, store: DetailsTypeStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def listing(self, file: str | None = None) -> list[RegisteredType]:
        """Every type a server started now would accept, where each comes from; a later
        source replaces an earlier one's type of the same name."""
        found = {n: RegisteredType(n, "built-in", s) for n, s in BUILTIN_TYPES.items()}
        if file:
            found |= {n: RegisteredType(n, "file", s) for n, s in schemas_of_file(file).items()}
        stored = schemas_of_store(await self._store.list_details_types())
        found |= {n: RegisteredType(n, "registered", s) for n, s in stored.items()}
        return [found[n] for n in sorted(found)]

    async def add(self, name: str, schema_text: str) -> Mapping[str, Any]:
        """Register ``name`` with the JSON Schema ``schema_text`` (or replace its schema);
        :class:`ValueError` if either is not valid, or names a built-in type."""
        check_type_name(name)
        if name in BUILTIN_TYPES:
            raise ValueError(f"{name!r} is built in; give your type another name")
        try:
            schema = check_schema(json.loads(schema_text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"the schema is not JSON: {exc}") from None
        await self._store.save_details_type(name, canonical_schema(schema), self._clock.now())
        return schema

    async def remove(self, name: str) -> bool:
        return await self._store.remove_details_type(name)


def canonical_schema(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def refresh_types_forever(
    types: DetailsTypes, store: DetailsTypeStore, interval: float
) -> None:
    """Every ``interval`` seconds, accept the types registered with the CLI as they are
    now in ``store`` (added, changed or removed on any instance); an unreadable store or a
    bad schema keeps the types as they were."""
    while True:
        await asyncio.sleep(interval)
        try:
            types.register(schemas_of_store(await store.list_details_types()))
        except Exception:  # a database outage or a bad row: keep serving what we have
            log.warning("could not re-read the registered authorization_details types")


#: The built-in types alone, with the default limits; never refreshed.
DEFAULT_TYPES = DetailsTypes()
