"""What every REST v2 handler shares: routes with and without a trailing slash (Flattr's API
took both), Flattr's error answers, Bearer-token authorization with scopes, reading
parameters from the query, a JSON body or a form, pagination, absolute links, and the
middleware that turns refusals into `{"error", "error_description", "error_uri"}` and adds the
`X-RateLimit-*` headers (not to /rate_limit, which is not rate limited)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, overload

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from base import links
from base.inputs import loads_json, parse_int
from catalog.errors import CatalogError
from hub.rest.ratelimit import RateLimiter, Usage, address_key
from hub.rest.views import Asker
from hub.web.session import CONFIG, REDIS, call, client_address
from ledger.errors import LedgerError, NotFound
from ledger.subscriptions import SubscriptionRefused
from members.apps import Grant, hashed, token_grant

PREFIX = "/rest/v2"
ERRORS_DOCUMENT = "/openapi.json"  # error_uri: the hub's API description, which lists them
GRANT = "api_grant"
USAGE = "api_usage"
MAX_COUNT = 100
DEFAULT_COUNT = 30
SERVED = ("*/*", "application/*", "application/json", "application/stream+json")
CATALOG_STATUS = {"invalid_parameters": 400, "not_found": 404, "forbidden": 403,
                  "conflict": 409, "fetch_failed": 404}
HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large"}

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """A refused API request, answered `{"error": code, "error_description": description}`."""

    def __init__(self, status: int, code: str, description: str,
                 extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status, self.code, self.description = status, code, description
        self.extra = dict(extra or {})


def route(app: web.Application, method: str, path: str,
          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
    """Serve `method` on PREFIX + `path` spelled with and without a trailing slash."""
    for spelling in (PREFIX + path, PREFIX + path + "/"):
        if method == "GET":
            app.router.add_get(spelling, handler)  # and HEAD
        else:
            app.router.add_route(method, spelling, handler)


OVER_LIMIT = ApiError(403, "rate_limit_exceeded", "rate limit exceeded; wait for the reset")


def reply(data: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type=content_type,
                        charset="utf-8")


def no_content() -> web.Response:
    """204, with the JSON content type Flattr's answers named even when empty."""
    return web.Response(status=204, headers={"Content-Type": "application/json; charset=utf-8"})


def error_reply(status: int, code: str, description: str,
                extra: Mapping[str, Any] | None = None, uri: str = ERRORS_DOCUMENT
                ) -> web.Response:
    answer = reply({**(extra or {}), "error": code, "error_description": description,
                    "error_uri": uri}, status)
    if status == 401:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="flattr"'
    return answer


async def grant(request: web.Request, scope: str | None = None) -> Grant:
    """The Bearer token's grant; 401 `unauthorized` without a valid token, 403
    `insufficient_scope` when it lacks `scope`."""
    found = await optional_grant(request)
    if found is None:
        raise ApiError(401, "unauthorized", "this resource needs a Bearer token")
    if scope is not None and scope not in found.scopes:
        raise ApiError(403, "insufficient_scope", f"this needs the {scope} scope")
    return found


async def optional_grant(request: web.Request) -> Grant | None:
    """The grant of the Bearer token when one is sent (401 when it is not valid), else None."""
    if GRANT not in request:
        token = bearer_token(request)
        found = None
        if token is not None:
            found = await call(request, token_grant, token)
            if found is None:
                raise ApiError(401, "unauthorized", "the access token is not valid")
        request[GRANT] = found
    return request[GRANT]


async def asker(request: web.Request) -> Asker:
    """The optional token's grant and whether `full` objects are wanted."""
    return Asker(await optional_grant(request), wants_full(request))


def wants_full(request: web.Request) -> bool:
    """Flattr's `full` parameter (`?full`, `?full=1`): whole user objects inside things."""
    return "full" in request.query and request.query["full"].lower() not in ("0", "false")


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def body(request: web.Request) -> dict[str, Any]:
    """The parameters of a POST/PUT/PATCH: a JSON object or a form; the query's too."""
    values: dict[str, Any] = dict(request.query)
    if not request.body_exists:  # a form body is already read (form_bodies)
        return values
    if request.content_type == "application/json":
        try:
            data = loads_json(await request.read())
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_request", "the body must be a JSON object")
        values.update(data)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        values.update({key: value for key, value in (await request.post()).items()
                       if isinstance(value, str)})
    return values


@overload
def text_param(values: Mapping[str, Any], name: str, required: Literal[True]) -> str: ...


@overload
def text_param(values: Mapping[str, Any], name: str, required: bool = False) -> str | None: ...


def text_param(values: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(400, "invalid_parameters", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameters", f"{name} must be a string")
    return value


def int_param(values: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = values.get(name)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise ApiError(400, "invalid_parameters", f"{name} must be a whole number from {low} "
                                                   f"to {high}")
    return number


def paging(values: Mapping[str, Any]) -> tuple[int, int]:
    """(`page` from 1, `count` from 1 to 100, default 30)."""
    return (int_param(values, "page", 1, 1, 1_000_000),
            int_param(values, "count", DEFAULT_COUNT, 1, MAX_COUNT))


def base_url(request: web.Request) -> str:
    """Links are built from hub.base_url, never from the Host header (`base.links`)."""
    return links.base_url(request.app[CONFIG])


def thing_id(request: web.Request) -> int:
    try:
        return parse_int(request.match_info["id"], 1)
    except ValueError:
        raise ApiError(404, "not_found", "no such thing") from None


@web.middleware
async def api_middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    """For /rest/v2: refuse an invalid Bearer token at once (401, on every route), count the
    request against the caller's hourly limit (the token's, else the address's), answer
    refusals as Flattr does, and put the rate-limit headers on every answer."""
    if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
        return await handler(request)
    counted = request.path.rstrip("/") != PREFIX + "/rate_limit"
    uri = base_url(request) + ERRORS_DOCUMENT
    try:
        found = await optional_grant(request)
    except ApiError as invalid:  # an invalid token: 401 at once, counted against the address
        usage = await _count(request, address_key(client_address(request)), True)
        refusal = OVER_LIMIT if usage is not None and usage.exceeded else invalid
        answer: web.StreamResponse = error_reply(refusal.status, refusal.code,
                                                 refusal.description, uri=uri)
        if usage is not None:
            answer.headers.update(usage.headers())
        return answer
    who = (f"token:{hashed(bearer_token(request) or '')}" if found is not None
           else address_key(client_address(request)))
    usage = await _count(request, who, counted)
    request[USAGE] = usage
    try:
        if counted and usage is not None and usage.exceeded:
            raise OVER_LIMIT
        if not _acceptable(request.headers.get("Accept", "")):
            raise ApiError(406, "not_acceptable", "only JSON is served (application/json, "
                                                  "application/stream+json for activities)")
        answer = await handler(request)
    except ApiError as exc:
        answer = error_reply(exc.status, exc.code, exc.description, exc.extra, uri)
    except SubscriptionRefused as exc:
        answer = error_reply(403, exc.code, str(exc), uri=uri)
    except NotFound as exc:
        answer = error_reply(404, "not_found", str(exc), uri=uri)
    except LedgerError as exc:
        answer = error_reply(400, "invalid_parameters", str(exc), uri=uri)
    except CatalogError as exc:
        answer = error_reply(CATALOG_STATUS.get(exc.code, 400), exc.code, str(exc), uri=uri)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        answer = error_reply(exc.status, HTTP_CODES.get(exc.status, "invalid_request"),
                             exc.reason, uri=uri)
    if usage is not None and counted:
        answer.headers.update(usage.headers())
    return answer


def _acceptable(accept: str) -> bool:
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return not accept.strip() or any(t in SERVED for t in types)


async def _count(request: web.Request, who: str, counted: bool) -> Usage | None:
    limiter = RateLimiter(request.app[REDIS], request.app[CONFIG])
    try:
        return await asyncio.get_running_loop().run_in_executor(
            None, limiter.hit if counted else limiter.peek, who)
    except RedisError:  # Redis down: the API still answers, unlimited, without the headers
        log.warning("rate_limit_unavailable", exc_info=True)
        return None
