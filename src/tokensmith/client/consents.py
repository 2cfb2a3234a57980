"""Consents a partner app creates before sending its user to approve them.

A payment (RFC 9396 ``authorization_details`` of type ``payment_initiation``) is first
registered by the app with its own client_credentials token (scope ``consents``):
``POST {issuer}/oauth/consents`` gives a ``consent_id``; the app then sends the user to
the authorization endpoint (or pushes the request, RFC 9126) with ``consent_id`` instead
of ``authorization_details``, and reads the consent's status with ``GET`` on its URL.
No RFC defines this resource; it follows the lodging-intent pattern of FAPI ecosystems.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONSENTS_SCOPE", "Consent"]

#: The scope of the token that creates and reads the client's consents.
CONSENTS_SCOPE = "consents"


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent as the server reports it.

    ``status``: ``awaiting_authorization``, then ``authorized`` or ``rejected`` at the
    user's decision, ``consumed`` once a single-use consent paid, ``revoked``,
    ``expired``. Times are as the server sent them; ``raw`` holds the whole answer.
    """

    consent_id: str
    status: str
    client_id: str | None = None
    authorization_details: tuple[Mapping[str, Any], ...] = ()
    created_at: Any = None
    expires_at: Any = None
    status_updated_at: Any = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Consent | None:
        """The consent of a server answer, or None if it is not one."""
        if not isinstance(data, Mapping):
            return None
        consent_id, status = data.get("consent_id"), data.get("status")
        if not isinstance(consent_id, str) or not consent_id or not isinstance(status, str):
            return None
        details = data.get("authorization_details")
        client_id = data.get("client_id")
        return cls(
            consent_id=consent_id,
            status=status,
            client_id=client_id if isinstance(client_id, str) else None,
            authorization_details=tuple(d for d in details if isinstance(d, Mapping))
            if isinstance(details, list)
            else (),
            created_at=data.get("created_at"),
            expires_at=data.get("expires_at"),
            status_updated_at=data.get("status_updated_at"),
            raw=dict(data),
        )
