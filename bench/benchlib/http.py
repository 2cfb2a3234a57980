"""One request by hand (stdlib only): checks that a server answers before it is loaded."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from .model import LoadPlan


def basic_auth(client_id: str, secret: str) -> str:
    raw = f"{client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def post_form(url: str, auth: str, body: str) -> tuple[int, dict[str, Any]]:
    return post_form_with(url, {"Authorization": auth}, body)


def post_form_with(url: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as err:
        return err.code, _json(err.read())


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {"raw": raw[:200].decode(errors="replace")}
    return data if isinstance(data, dict) else {"raw": data}


def check(base_url: str, plan: LoadPlan) -> str:
    """Send the plan's request once; return a short sample of a good answer or raise."""
    status, data = post_form(base_url + plan.path, plan.auth, plan.check_body or plan.body)
    if status != 200 or not data.get(plan.expect):
        raise RuntimeError(f"check request got {status}: {json.dumps(data)[:300]}")
    return summarize(data)


def summarize(data: dict[str, Any]) -> str:
    def cut(value: Any) -> Any:
        return value[:24] + "..." if isinstance(value, str) and len(value) > 28 else value

    return json.dumps({key: cut(value) for key, value in data.items()})
