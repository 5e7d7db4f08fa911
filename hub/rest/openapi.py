"""The OpenAPI 3 document of the hub's HTTP API (REST v2, the OAuth token endpoint, webhooks,
health and metrics), kept as `openapi.yaml` next to this module and served at /openapi.json
with this hub's URL as its server."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from hub.rest.common import base_url

DOCUMENT = Path(__file__).with_name("openapi.yaml")


def routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document as written (no `servers`)."""
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response({**document(), "servers": [{"url": base_url(request)}]})
