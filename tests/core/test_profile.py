"""The FAPI 2.0 profile's rules without HTTP (:mod:`tokensmith.core.profile`): which
profile a client follows, the methods it may authenticate with, the one decision on
sender-constrained tokens, and what the metadata advertises."""

from __future__ import annotations

import pytest

from tokensmith.core.errors import InvalidClient, InvalidRequest
from tokensmith.core.models import Client
from tokensmith.core.profile import (
    AUTH_METHODS,
    FAPI2_AUTH_METHODS,
    ProfilePolicy,
    advertised_auth_methods,
    check_auth_method,
    check_sender_constrained,
    sender_constrained,
)
from tokensmith.core.requests import TokenRequest

REQUEST = TokenRequest("client_credentials", {}, None)


def client(profile: str | None = None) -> Client:
    return Client("c1", "app", ("read",), profile=profile)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("server", "own", "effective"),
    [
        ("default", None, "default"),
        ("fapi2", None, "fapi2"),
        ("fapi2", "default", "default"),
        ("default", "fapi2", "fapi2"),
    ],
)
def test_the_clients_own_profile_wins_over_the_servers(
    server: str, own: str | None, effective: str
) -> None:
    policy = ProfilePolicy(server)  # type: ignore[arg-type]
    assert policy.of(client(own)) == effective
    assert policy.fapi2(client(own)) == (effective == "fapi2")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "none"])
def test_secrets_and_public_clients_are_not_fapi2_methods(method: str) -> None:
    with pytest.raises(InvalidClient) as caught:
        check_auth_method(client("fapi2"), method)
    assert caught.value.basic == (method == "client_secret_basic")
    assert "FAPI 2.0" in caught.value.description and method in caught.value.description


@pytest.mark.parametrize("method", sorted(FAPI2_AUTH_METHODS))
def test_private_key_jwt_and_mutual_tls_are_fapi2_methods(method: str) -> None:
    check_auth_method(client("fapi2"), method)


def test_a_request_is_sender_constrained_by_a_verified_proof() -> None:
    assert sender_constrained(REQUEST, "jkt") and not sender_constrained(REQUEST, None)
    check_sender_constrained(REQUEST, "jkt")
    with pytest.raises(InvalidRequest, match="sender-constrained"):
        check_sender_constrained(REQUEST, None)


def test_the_metadata_lists_only_implemented_methods_fapi2_allows() -> None:
    assert advertised_auth_methods("fapi2", public=True) == ["private_key_jwt"]
    assert advertised_auth_methods("fapi2", public=False) == ["private_key_jwt"]
    assert advertised_auth_methods("default", public=True) == [*AUTH_METHODS, "none"]
    assert advertised_auth_methods("default", public=False) == list(AUTH_METHODS)
