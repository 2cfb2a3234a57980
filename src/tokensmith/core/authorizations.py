"""What users and merchants have authorized partner apps to do, and ending it.

An authorization is a remembered consent (RFC 6749 §4.1.1: the user's approval, kept so
that a later request for the same scopes is answered at once) or a live token family (an
authorization code redeemed, RFC 6749 §4.1.3, with its refresh and access tokens).
:meth:`Authorizations.withdraw` ends both in one storage transaction, for one user (the
consent page) or for every user of a merchant (the panel's Authorized apps): the tokens
stop working as if each were revoked (RFC 7009 §2.1), and the app must ask again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tokensmith.core.audit import SYSTEM, Audit, By
from tokensmith.core.authorize import (
    AuthorizationRequest,
    consent_covers,
    describe_scope,
    issue_code,
    remember_consent,
)
from tokensmith.core.clock import Clock
from tokensmith.core.consent_resources import ConsentResources
from tokensmith.core.errors import InvalidRequest
from tokensmith.core.families import PartnerPolicy, new_family_id
from tokensmith.core.models import Grantor, User, Withdrawal
from tokensmith.core.ports import (
    ClientReader,
    CodeWriter,
    ConsentStore,
    MerchantFamilyStore,
    UserLister,
    WithdrawalStore,
)
from tokensmith.core.randomness import Randomness
from tokensmith.core.scopes import parse_scope

__all__ = ["Authorizations", "AuthorizedApp"]


@dataclass(slots=True)
class AuthorizedApp:
    """One app as authorized by a user, or by the users of a merchant together."""

    client_id: str
    name: str = ""
    #: scope -> what it lets the app do, in words
    scopes: dict[str, str] = field(default_factory=dict)
    first_at: float = 0.0
    last_at: float = 0.0
    #: who approved it (e-mail addresses; a user id if the user is gone)
    users: set[str] = field(default_factory=set)
    #: a consent is remembered, so the app is approved again without asking
    remembered: bool = False
    #: live token families
    live_grants: int = 0

    def add(self, scope: str, at: float, who: str) -> None:
        for s in parse_scope(scope):
            self.scopes[s] = describe_scope(s)
        self.first_at = min(self.first_at or at, at)
        self.last_at = max(self.last_at, at)
        self.users.add(who)


class Authorizations:
    """Codes, consents and their withdrawal (RFC 6749 §4.1)."""

    def __init__(
        self,
        consents: ConsentStore,
        codes: CodeWriter,
        withdrawals: WithdrawalStore,
        families: MerchantFamilyStore,
        users: UserLister,
        clients: ClientReader,
        clock: Clock,
        rand: Randomness,
        policy: PartnerPolicy,
        issuer_tag: str,
        audit: Audit | None = None,
        resources: ConsentResources | None = None,
    ) -> None:
        #: The consent resources an authorization request may name.
        self.resources = resources
        self._consents = consents
        self._codes = codes
        self._withdrawals = withdrawals
        self._families = families
        self._users = users
        self._clients = clients
        self._clock = clock
        self._rand = rand
        self._policy = policy
        self._issuer_tag = issuer_tag
        self._audit = audit or Audit.null(clock, rand)

    @staticmethod
    def refusal(user: User) -> str | None:
        """Why this user cannot authorize an app, if they cannot. A partner app may belong
        to one merchant (the company that registered it) and be authorized by any other:
        the tokens then act for the authorizing merchant (their ``sub``)."""
        if user.merchant_id is None:
            return "only a merchant's user can authorize an app"
        return None

    async def issue_code(
        self, request: AuthorizationRequest, user: User, *, by: By = SYSTEM
    ) -> str:
        """RFC 6749 §4.1.2: a single-use code for ``request``, approved by ``user``. A
        request naming a consent resource authorizes it first, for the code's token
        family: ``invalid_request`` if it is no longer awaiting authorization (another
        decision won, or it expired), and then no code is issued."""
        family_id = None
        if request.consent_id is not None:
            if self.resources is None:
                raise InvalidRequest("consent resources are not enabled on this server")
            family_id = new_family_id(self._rand)
            await self.resources.authorize(
                request.consent_id, request.client.client_id, user, family_id, by=by
            )
        return await issue_code(
            self._codes,
            self._clock,
            self._rand,
            request,
            user,
            self._policy,
            self._issuer_tag,
            family_id,
        )

    async def reject(self, request: AuthorizationRequest, user: User, *, by: By = SYSTEM) -> None:
        """The user denied ``request``: the consent resource it names, if any, is
        ``rejected``."""
        if request.consent_id is not None and self.resources is not None:
            await self.resources.reject(request.consent_id, request.client.client_id, user, by=by)

    async def covered(self, user: User, request: AuthorizationRequest) -> bool:
        """Whether a remembered consent answers ``request`` without asking."""
        return await consent_covers(self._consents, user, request)

    async def remember(self, user: User, request: AuthorizationRequest) -> None:
        """Remember the approval (confidential clients only: RFC 8252 §8.6)."""
        if not request.client.public:
            await remember_consent(self._consents, self._clock, user, request)

    async def consent(
        self, user: User, request: AuthorizationRequest, *, remember: bool, by: By
    ) -> None:
        """The user approved ``request`` on the consent page: remember it if asked (and
        the client may be remembered), and record ``consent.granted``. An approval of
        ``authorization_details`` (RFC 9396: this payment, these accounts) is for that
        request alone and is never remembered."""
        remembered = (
            remember and not request.client.public and request.authorization_details is None
        )
        if remembered:
            await self.remember(user, request)
        await self._audit.by(
            by,
            "consent.granted",
            merchant_id=user.merchant_id,
            subject=request.client.client_id,
            scope=" ".join(request.scopes),
            remembered=remembered,
        )

    async def of_user(self, user: User) -> list[AuthorizedApp]:
        """The apps the user's remembered consents approve, oldest first."""
        found = []
        for consent in await self._consents.list_consents(user.user_id):
            app = AuthorizedApp(consent.client_id, remembered=True)
            app.add(consent.scope, consent.granted_at, user.email)
            found.append(app)
        await self._name(found)
        return found

    async def of_merchant(self, merchant_id: str) -> dict[str, AuthorizedApp]:
        """By client id: the apps a user of the merchant remembered a consent to, or for
        which one of the merchant's token families is live."""
        users = {u.user_id: u for u in await self._users.list_users(merchant_id)}
        found: dict[str, AuthorizedApp] = {}
        for user in users.values():
            for consent in await self._consents.list_consents(user.user_id):
                app = found.setdefault(consent.client_id, AuthorizedApp(consent.client_id))
                app.add(consent.scope, consent.granted_at, user.email)
                app.remembered = True
        now = self._clock.now()
        for family in await self._families.merchant_families(merchant_id):
            if not family.live_at(now):
                continue
            app = found.setdefault(family.client_id, AuthorizedApp(family.client_id))
            who = users.get(family.user_id)
            app.add(family.scope, family.created_at, who.email if who else family.user_id)
            app.live_grants += 1
        await self._name(found.values())
        return found

    async def _name(self, apps: Iterable[AuthorizedApp]) -> None:
        for app in apps:
            client = await self._clients.get_client(app.client_id)
            app.name = client.name if client else app.client_id

    async def withdraw(
        self,
        grantor: Grantor,
        client_id: str,
        *,
        by: By = SYSTEM,
        merchant_id: str | None = None,
    ) -> Withdrawal:
        """End what ``grantor`` authorized ``client_id`` to do: its remembered consents are
        forgotten and its token families revoked, refresh and access tokens with them, in
        one transaction. A merchant withdraws for all its users; a user for themself only.
        The result is empty (false) if nothing was authorized; else a ``consent.withdrawn``
        event is recorded (``merchant_id``: the user's merchant, for a user's withdrawal)."""
        done = await self._withdrawals.withdraw_authorization(grantor, client_id, self._clock.now())
        if done:
            await self._audit.by(
                by,
                "consent.withdrawn",
                merchant_id=grantor.merchant_id or merchant_id,
                subject=client_id,
                consents=done.consents,
                grants=done.families,
                scope_of="merchant" if grantor.merchant_id else "user",
            )
        return done

    async def _member(self, merchant_id: str, user_id: str) -> User | None:
        users = await self._users.list_users(merchant_id)
        return next((u for u in users if u.user_id == user_id), None)

    async def of_member(self, merchant_id: str, user_id: str) -> list[AuthorizedApp] | None:
        """:meth:`of_user` for a user of ``merchant_id``; ``None`` if they are not one."""
        user = await self._member(merchant_id, user_id)
        return None if user is None else await self.of_user(user)

    async def withdraw_member(
        self, merchant_id: str, user_id: str, client_id: str, *, by: By = SYSTEM
    ) -> Withdrawal | None:
        """:meth:`withdraw` for one user of ``merchant_id``; ``None`` if they are not one."""
        user = await self._member(merchant_id, user_id)
        if user is None:
            return None
        grantor = Grantor(user_id=user.user_id)
        return await self.withdraw(grantor, client_id, by=by, merchant_id=merchant_id)
