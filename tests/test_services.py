"""PostgreSQL and Redis tests run wherever those answer at their default local addresses,
not only where the variables name them; an empty variable turns them off."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.services import reachable, service_url

VARIABLE = "TOKENSMITH_TEST_REDIS_URL"


@pytest.fixture
def listening() -> Iterator[str]:
    """A URL whose host and port accept connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"redis://127.0.0.1:{s.getsockname()[1]}/0"


@pytest.fixture
def silent() -> str:
    """A URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.parametrize(
    ("environ", "default", "expected"),
    [
        ({}, "listening", "listening"),  # unset, the default answers: used
        ({}, "silent", None),  # unset, nothing there: skipped
        ({VARIABLE: ""}, "listening", None),  # empty: off, whatever answers
        ({VARIABLE: "redis://elsewhere:1/2"}, "listening", "redis://elsewhere:1/2"),
        ({VARIABLE: "redis://elsewhere:1/2"}, "silent", "redis://elsewhere:1/2"),
    ],
    ids=["unset-answering", "unset-silent", "empty", "set", "set-not-probed"],
)
def test_service_url_probes_the_default_only_when_the_variable_is_unset(
    environ: dict[str, str],
    default: str,
    expected: str | None,
    listening: str,
    silent: str,
) -> None:
    urls = {"listening": listening, "silent": silent}
    default_url = urls[default]
    assert service_url(VARIABLE, default_url, environ) == urls.get(expected or "", expected)


def test_the_probe_of_a_silent_address_is_quick(silent: str) -> None:
    started = time.monotonic()
    assert reachable(silent) is False
    assert reachable("postgresql://postgres@/test") is False  # no host or port to probe
    assert time.monotonic() - started < 1.0
