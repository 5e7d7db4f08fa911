"""Flattr's REST API v2 at /rest/v2, as documented by Flattr (developers.flattr.net): users,
things, flattrs, subscriptions, activities, categories and languages, with Bearer tokens from
the hub's OAuth 2.0 provider (hub.web.oauth), Flattr's error bodies and `X-RateLimit-*`
headers. One module per resource group; `routes(app)` installs them all and the OpenAPI
document (/openapi.json)."""

from __future__ import annotations

from aiohttp import web

from hub.rest import activities, flattrs, openapi, subscriptions, things, users, vocab
from hub.rest.common import api_middleware

MODULES = (things, flattrs, users, activities, subscriptions, vocab, openapi)


def routes(app: web.Application) -> None:
    app.middlewares.append(api_middleware)
    for module in MODULES:
        module.routes(app)
