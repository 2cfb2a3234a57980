"""``tokensmith purge``: delete expired tokens, codes, sessions and pushed requests now."""

from __future__ import annotations

import click

from tokensmith.cli._common import Env, db_options, emit, json_option, with_env
from tokensmith.core.purge import purge_once

__all__ = ["purge"]


@click.command("purge")
@json_option
@db_options
@with_env
async def purge(env: Env, as_json: bool) -> None:
    """Delete expired access tokens, ended refresh token families, expired authorization
    codes, sessions, pushed authorization requests and audit events older than
    TOKENSMITH_AUDIT_RETENTION_DAYS, in batches; print the counts."""
    s = env.settings
    retention = s.audit_retention_days * 86400.0
    counts = await purge_once(
        env.store, env.clock, s.purge_batch_size, s.session_idle_ttl, retention
    )
    text = "\n".join(f"{k}: {v}" for k, v in counts.as_dict().items())
    emit(counts.as_dict(), as_json, text)
