"""Set-up for the django-oauth-toolkit peer.

``python tools.py init CLIENT_SECRET hashed|plain`` migrates and registers the
confidential client (``hashed`` is DOT's default; ``plain`` sets hash_client_secret=False);
``python tools.py seed N OUTFILE`` stores N access/refresh token pairs for a bench user
(client_credentials issues no refresh token, so the refresh scenario starts from these).
"""

import os
import secrets
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dotbench.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from oauth2_provider.models import AccessToken, Application, RefreshToken  # noqa: E402

CLIENT_ID = "bench-client"


def init(secret: str, hashed: bool) -> None:
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-user")
    Application.objects.create(
        client_id=CLIENT_ID,
        client_secret=secret,
        user=user,
        name="bench",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        hash_client_secret=hashed,
    )


def seed(count: int, out: str) -> None:
    user = get_user_model().objects.get(username="bench-user")
    app = Application.objects.get(client_id=CLIENT_ID)
    expires = timezone.now() + timedelta(hours=1)
    values = []
    for _ in range(count):
        access = AccessToken.objects.create(
            user=user,
            application=app,
            token=secrets.token_urlsafe(30),
            expires=expires,
            scope="read write",
        )
        refresh = RefreshToken.objects.create(
            user=user, application=app, token=secrets.token_urlsafe(30), access_token=access
        )
        values.append(refresh.token)
    with open(out, "w") as fh:
        fh.write("\n".join(values) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2], sys.argv[3] != "plain")
    elif sys.argv[1] == "seed":
        seed(int(sys.argv[2]), sys.argv[3])
