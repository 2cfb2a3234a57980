"""Authlib authorization server on Flask, the peer of the tokensmith benchmark.

It follows Authlib's documented Flask pattern (the example-oauth2-server layout):
SQLAlchemy models built on the ``sqla_oauth2`` mixins through flask_sqlalchemy, an
``AuthorizationServer`` with ``create_query_client_func``/``create_save_token_func``,
``ClientCredentialsGrant`` and a ``RefreshTokenGrant`` subclass. With
``BENCH_TOKEN_MODE=jwt`` it issues RFC 9068 tokens with Authlib's
``JWTBearerTokenGenerator`` (ES256) and introspects them with ``JWTIntrospectionEndpoint``.

Env: DATABASE_URL, BENCH_TOKEN_MODE (opaque|jwt), BENCH_JWK_FILE, BENCH_ISSUER.
Served as ``gunicorn 'app:create_app()'``. CLI: ``python app.py genkey PATH``,
``python app.py init CLIENT_SECRET`` and ``python app.py seed N OUTFILE``.
"""

import json
import os
import sys
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.sqla_oauth2 import (
    OAuth2ClientMixin,
    OAuth2TokenMixin,
    create_query_client_func,
    create_save_token_func,
)
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTIntrospectionEndpoint
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from joserfc.jwk import KeySet

AUDIENCE = "https://api.bench.local"
CLIENT_ID = "bench-client"

db = SQLAlchemy()
authorization = AuthorizationServer()


class User(db.Model):  # type: ignore[name-defined]
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(40), unique=True)

    def get_user_id(self) -> int:
        return self.id


class OAuth2Client(db.Model, OAuth2ClientMixin):  # type: ignore[name-defined,misc]
    __tablename__ = "oauth2_client"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="CASCADE"))
    user = db.relationship("User")


class OAuth2Token(db.Model, OAuth2TokenMixin):  # type: ignore[name-defined,misc]
    __tablename__ = "oauth2_token"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id", ondelete="CASCADE"))
    user = db.relationship("User")
    # The mixin declares String(255); an ES256 JWT is longer, and PostgreSQL enforces it.
    access_token = db.Column(db.Text, unique=True, nullable=False)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        token = db.session.query(OAuth2Token).filter_by(refresh_token=refresh_token).first()
        if token and not token.refresh_token_revoked_at:
            return token
        return None

    def authenticate_user(self, credential):
        return db.session.get(User, credential.user_id)

    def revoke_old_credential(self, credential):
        now = int(time.time())
        credential.access_token_revoked_at = now
        credential.refresh_token_revoked_at = now
        db.session.add(credential)
        db.session.commit()


def _load_jwks() -> dict:
    with open(os.environ["BENCH_JWK_FILE"]) as fh:
        return json.load(fh)


class BenchJWTGenerator(JWTBearerTokenGenerator):
    jwks: KeySet | None = None

    def get_jwks(self):
        return self.jwks

    def get_audiences(self, client, user, scope):
        return AUDIENCE


class BenchJWTIntrospection(JWTIntrospectionEndpoint):
    jwks: KeySet | None = None

    def get_jwks(self):
        return self.jwks

    def check_permission(self, token, client, request):
        return token["client_id"] == client.get_client_id()


def config_oauth(app: Flask) -> None:
    authorization.init_app(
        app,
        query_client=create_query_client_func(db.session, OAuth2Client),
        save_token=create_save_token_func(db.session, OAuth2Token),
    )
    authorization.register_grant(grants.ClientCredentialsGrant)
    authorization.register_grant(RefreshTokenGrant)
    if os.environ.get("BENCH_TOKEN_MODE", "opaque") == "jwt":
        config_jwt(os.environ["BENCH_ISSUER"])


def config_jwt(issuer: str) -> None:
    jwks = _load_jwks()
    BenchJWTGenerator.jwks = KeySet.import_key_set(jwks)
    public = {"keys": [_public(k) for k in jwks["keys"]]}
    BenchJWTIntrospection.jwks = KeySet.import_key_set(public)
    generator = BenchJWTGenerator(
        issuer=issuer, alg="ES256", expires_generator=lambda client, grant_type: 3600
    )
    authorization.register_token_generator("default", generator)
    authorization.register_endpoint(BenchJWTIntrospection(issuer=issuer))


def _public(key: dict) -> dict:
    return {k: v for k, v in key.items() if k != "d"}


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"client_credentials": 3600, "refresh_token": 3600}
    db.init_app(app)
    config_oauth(app)
    app.add_url_rule("/oauth/token", "issue_token", issue_token, methods=["POST"])
    app.add_url_rule("/oauth/introspect", "introspect", introspect, methods=["POST"])
    return app


def issue_token():
    return authorization.create_token_response()


def introspect():
    return authorization.create_endpoint_response("introspection")


def init_db(secret: str) -> None:
    db.create_all()
    user = User(username="bench-user")
    db.session.add(user)
    db.session.flush()
    client = OAuth2Client(client_id=CLIENT_ID, client_secret=secret, user_id=user.id)
    client.client_id_issued_at = int(time.time())
    client.set_client_metadata(
        {
            "client_name": "bench",
            "grant_types": ["client_credentials", "refresh_token"],
            "response_types": [],
            "scope": "read write",
            "token_endpoint_auth_method": "client_secret_basic",
        }
    )
    db.session.add(client)
    db.session.commit()


def write_jwk(path: str) -> None:
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "bench-es256", "use": "sig"})
    with open(path, "w") as fh:
        json.dump({"keys": [key.as_dict(private=True)]}, fh)


def seed(count: int, out: str) -> None:
    """Store ``count`` refresh tokens for the bench user, as the refresh grant would."""
    user = db.session.query(User).filter_by(username="bench-user").one()
    now = int(time.time())
    values = []
    for i in range(count):
        refresh = f"seed-{now}-{i}-{os.urandom(12).hex()}"
        values.append(refresh)
        db.session.add(
            OAuth2Token(
                client_id=CLIENT_ID,
                user_id=user.id,
                token_type="Bearer",
                access_token=f"at-{refresh}",
                refresh_token=refresh,
                scope="read write",
                issued_at=now,
                expires_in=3600,
            )
        )
    db.session.commit()
    with open(out, "w") as fh:
        fh.write("\n".join(values) + "\n")


def main(argv: list[str]) -> None:
    if argv[0] == "genkey":
        write_jwk(argv[1])
        return
    with create_app().app_context():
        if argv[0] == "init":
            init_db(argv[1])
        elif argv[0] == "seed":
            seed(int(argv[1]), argv[2])


if __name__ == "__main__":
    main(sys.argv[1:])
