"""The servers the benchmark drives, peers first and tokensmith last."""

from __future__ import annotations

from ..model import Scenario
from .authlib_flask import AuthlibTarget
from .base import Target
from .dot import DotTarget
from .floor import FloorTarget
from .node_oidc import NodeOidcTarget
from .tokensmith import TokensmithTarget
from .tokensmith_fapi import TokensmithFapiTarget


def all_targets() -> list[Target]:
    return [
        FloorTarget(),
        NodeOidcTarget("es256"),
        NodeOidcTarget("rs256"),
        NodeOidcTarget("opaque"),
        AuthlibTarget("jwt"),
        AuthlibTarget("opaque"),
        DotTarget(hashed_secret=True),
        DotTarget(hashed_secret=False),
        TokensmithTarget("jwt"),
        TokensmithTarget("opaque"),
        TokensmithFapiTarget(),
    ]


def smoke_targets() -> list[Target]:
    """The floor and tokensmith's JWT endpoint, nothing to install."""
    tokensmith = TokensmithTarget("jwt")
    tokensmith.scenarios = frozenset({Scenario.CC_JWT})
    return [FloorTarget(), tokensmith]


__all__ = ["Target", "all_targets", "smoke_targets"]
