"""The container files: the ``Dockerfile`` runs tokensmith as a non-root user with a health
check on ``/livez``, and ``compose.yaml`` runs two instances behind one issuer with only
settings that exist. Where ``docker`` or ``podman`` can build, the image is built too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from tokensmith import __version__
from tokensmith.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {f"TOKENSMITH_{name.upper()}" for name in Settings.model_fields}
SHARED = ("TOKENSMITH_DATABASE_URL", "TOKENSMITH_REDIS_URL", "TOKENSMITH_SECRET_KEY")
SHARED += ("TOKENSMITH_ISSUER",)


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions, ``(KEYWORD, arguments)``, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", re.sub(r"^\s*#.*\n", "", text, flags=re.M))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            found.append((keyword.upper(), " ".join(args.split())))
    return found


def _dockerfile() -> list[tuple[str, str]]:
    return instructions((ROOT / "Dockerfile").read_text())


def _args(keyword: str) -> list[str]:
    return [args for k, args in _dockerfile() if k == keyword]


def _compose() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _services() -> dict[str, dict[str, object]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _instances() -> dict[str, dict[str, str]]:
    """The tokensmith services and their environment."""
    return {
        name: service["environment"]  # type: ignore[misc]
        for name, service in _services().items()
        if "build" in service
    }


def test_the_reader_joins_continuations_and_skips_comments() -> None:
    text = "# c\nFROM a\nRUN x \\\n  && y\n\nUSER 1:1\n"
    assert instructions(text) == [("FROM", "a"), ("RUN", "x && y"), ("USER", "1:1")]


def test_the_image_is_python_3_12_slim_with_the_package_from_the_source_tree() -> None:
    assert _args("FROM") == ["python:3.12-slim"]
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in _args("RUN"))
    copied = " ".join(_args("COPY"))
    assert all(name in copied for name in ("pyproject.toml", "README.md", "src"))


def test_the_server_runs_as_a_user_that_is_not_root() -> None:
    users = _args("USER")
    assert users, "no USER: the server would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    keywords = [k for k, _ in _dockerfile()]
    assert keywords.index("ENTRYPOINT") > len(keywords) - 1 - keywords[::-1].index("USER")


def test_the_health_check_asks_livez_with_python() -> None:
    (check,) = _args("HEALTHCHECK")
    assert "/livez" in check and '"python"' in check
    assert not re.search(r"\b(curl|wget)\b", check)  # not in the slim image


def test_the_entrypoint_serves_on_every_interface_on_the_exposed_port() -> None:
    (entry,) = _args("ENTRYPOINT")
    assert json.loads(entry) == ["tokensmith", "serve", "--host", "0.0.0.0"]
    assert _args("EXPOSE") == ["8000"] and Settings.model_fields["port"].default == 8000


def test_dockerignore_keeps_secrets_and_databases_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "*.key", "*.db", ".env"} <= ignored


def test_compose_runs_two_instances_with_postgres_and_redis() -> None:
    services = _services()
    assert {"postgres", "redis"} <= set(services)
    assert len(_instances()) >= 2


def test_every_instance_shares_the_database_redis_secret_key_and_issuer() -> None:
    envs = list(_instances().values())
    for name in SHARED:
        assert {env.get(name) for env in envs} != {None}, name
        assert len({env[name] for env in envs}) == 1, name
    secret = envs[0]["TOKENSMITH_SECRET_KEY"]
    assert secret.startswith("${TOKENSMITH_SECRET_KEY:?"), "never a key written in the file"
    assert envs[0]["TOKENSMITH_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:" in envs[0]["TOKENSMITH_DATABASE_URL"]
    assert envs[0]["TOKENSMITH_REDIS_URL"].startswith("redis://redis:")


def test_every_tokensmith_variable_is_a_real_setting() -> None:
    named = {n for env in _instances().values() for n in env if n.startswith("TOKENSMITH_")}
    for _, args in _dockerfile():
        named |= set(re.findall(r"\bTOKENSMITH_[A-Z_]+", args))
    named |= set(re.findall(r"\bTOKENSMITH_[A-Z_]+", (ROOT / "compose.yaml").read_text()))
    assert named and named <= SETTINGS, named - SETTINGS


def test_the_proxy_is_trusted_at_its_fixed_address_and_reaches_every_instance() -> None:
    nginx = _services()["nginx"]
    address = nginx["networks"]["backend"]["ipv4_address"]  # type: ignore[index]
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for name, env in _instances().items():
        assert env["TOKENSMITH_TRUSTED_PROXIES"] == address
        assert f"server {name}:8000" in conf
        assert nginx["depends_on"][name]["condition"] == "service_healthy"  # type: ignore[index]


def _engine() -> str | None:
    """``docker`` or ``podman``, if it is installed and its daemon answers."""
    for name in ("docker", "podman"):
        path = shutil.which(name)
        if path is None:
            continue
        try:
            answered = subprocess.run(
                [path, "info"], capture_output=True, timeout=20, check=False
            ).returncode
        except (OSError, subprocess.TimeoutExpired):
            continue
        if answered == 0:
            return path
    return None


@pytest.mark.container
def test_the_image_builds_and_runs_tokensmith_as_a_user_that_is_not_root() -> None:
    engine = _engine()
    if engine is None:
        pytest.skip("no container engine (docker or podman) answers here")
    tag = f"tokensmith-test:{uuid.uuid4().hex[:12]}"
    subprocess.run([engine, "build", "-t", tag, str(ROOT)], check=True, timeout=900)
    try:

        def run(*argv: str) -> str:
            done = subprocess.run(
                [engine, "run", "--rm", "--entrypoint", argv[0], tag, *argv[1:]],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
            return done.stdout.strip()

        assert run("tokensmith", "-V") == f"tokensmith {__version__}"
        assert run("id", "-u") == "10001"
    finally:
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True, check=False)
