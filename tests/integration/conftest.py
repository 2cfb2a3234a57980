"""Fixtures of the integration tests: one real ``tokensmith serve`` per test module.

The server runs as a subprocess on a free loopback port with a temporary SQLite database
and the ``tpay``, ``tbc`` and ``dot`` dialects; accounts are created with the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.live import REFRESH_GRACE, LiveServer, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("tokensmith")
    with run_server(
        tmp,
        # keys rotated with the CLI are picked up quickly
        key_reload_interval="0.2",
        refresh_grace_seconds=str(REFRESH_GRACE),
    ) as live:
        yield live
