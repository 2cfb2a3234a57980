"""Demo data for ``tokensmith serve --demo``: well-known credentials, for trying things out.

Never use ``--demo`` on a server others can reach: its secrets are printed in the README.
"""

from __future__ import annotations

from tokensmith.core.accounts import create_user
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.models import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    REFRESH_TOKEN,
    ApiKey,
    Client,
    ClientSecret,
    Merchant,
)
from tokensmith.core.passwords import Passwords
from tokensmith.core.ports import Store
from tokensmith.core.randomness import SystemRandomness

__all__ = ["DEMO_APIKEY", "DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "seed_demo"]

DEMO_MERCHANT_ID = "m_demo"
DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-secret"
DEMO_APP_ID = "demo-app"
DEMO_APP_SECRET = "demo-app-secret"
DEMO_APIKEY = "demo-apikey"
DEMO_ADMIN_EMAIL = "admin@demo.shop"
DEMO_OPERATOR_EMAIL = "operator@demo.shop"
DEMO_PASSWORD = "demo-password"


async def _seed_users(store: Store, clock: Clock) -> None:
    passwords = Passwords()
    for email, role, merchant in (
        (DEMO_ADMIN_EMAIL, "admin", DEMO_MERCHANT_ID),
        (DEMO_OPERATOR_EMAIL, "operator", None),
    ):
        if await store.find_user_by_email(email) is None:
            await create_user(
                store,
                store,
                passwords,
                clock,
                SystemRandomness(),
                email=email,
                password=DEMO_PASSWORD,
                role=role,
                merchant=merchant,
            )


async def seed_demo(store: Store, clock: Clock, issuer: str) -> list[str]:
    """Create the demo merchant, users, client, partner app and apikey if missing; describe
    them."""
    now = clock.now()
    if await store.get_merchant(DEMO_MERCHANT_ID) is None:
        await store.add_merchant(Merchant(DEMO_MERCHANT_ID, "Demo Shop", now))
    if await store.get_client(DEMO_CLIENT_ID) is None:
        await store.add_client(
            Client(
                client_id=DEMO_CLIENT_ID,
                name="Demo API key",
                scopes=("read", "write", "admin"),
                default_scopes=("read",),
                secrets=(ClientSecret(hash_secret(DEMO_CLIENT_SECRET), now),),
                merchant_id=DEMO_MERCHANT_ID,
                created_at=now,
            )
        )
    if await store.get_client(DEMO_APP_ID) is None:
        await store.add_client(
            Client(
                client_id=DEMO_APP_ID,
                name="Demo partner app",
                # consents: it lodges consent resources with its own client_credentials token
                scopes=("read", "write", "consents"),
                grant_types=(AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS),
                secrets=(ClientSecret(hash_secret(DEMO_APP_SECRET), now),),
                redirect_uris=("http://127.0.0.1:8765/callback",),
                created_at=now,
            )
        )
    if await store.find_api_key(hash_secret(DEMO_APIKEY)) is None:
        await store.add_api_key(
            ApiKey("ak_demo", "Demo developer app", hash_secret(DEMO_APIKEY), now, DEMO_MERCHANT_ID)
        )
    await _seed_users(store, clock)
    return [
        "demo data (never use --demo where others can reach the server):",
        f"  log in at {issuer}/login as {DEMO_ADMIN_EMAIL} (merchant admin) or "
        f"{DEMO_OPERATOR_EMAIL} (operator), password {DEMO_PASSWORD}",
        f"  client_id={DEMO_CLIENT_ID} client_secret={DEMO_CLIENT_SECRET} scopes: read write admin",
        f"  partner app client_id={DEMO_APP_ID} client_secret={DEMO_APP_SECRET} "
        "scopes: read write consents",
        f"  apikey={DEMO_APIKEY} (tbc dialect)",
        f"  try: curl -s -u {DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET} "
        f"-d grant_type=client_credentials {issuer}/oauth/token",
    ]
