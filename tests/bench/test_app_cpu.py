"""``bench/app_cpu.py`` keeps working: both apps answer 200 in-process and it prints a
figure (the figure itself is a measurement, not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "app_cpu.py"


@pytest.mark.parametrize(
    "args",
    [
        ["--app", "floor"],
        [],
        ["--opaque"],
        ["--dpop"],
        ["--private-key-jwt"],
        ["--private-key-jwt", "--dpop"],
    ],
    ids=["floor", "jwt", "opaque", "dpop", "private_key_jwt", "private_key_jwt+dpop"],
)
def test_app_cpu_measures_an_in_process_app(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "-n", "50", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = (
        r"^(floor|tokensmith) (jwt|opaque)(\+private_key_jwt)?(\+dpop)?: "
        r"\d+\.\d µs CPU per request$"
    )
    assert re.search(found, out, re.M)
