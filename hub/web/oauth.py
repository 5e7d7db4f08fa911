"""The OAuth 2.0 provider's HTTP side: the app registration page (/apps), the consent page
(/oauth/authorize, authorization code grant), the token endpoint (/oauth/token) and token
revocation (/oauth/revoke, RFC 7009).

The consent page is only shown to a signed-in member; an unknown client or a redirect URI other
than the registered one is reported on the page, never redirected to (RFC 6749 §4.1.2.1). The
token endpoint takes the client's credentials by HTTP Basic or in the form/JSON body, and
answers as RFC 6749 §5 says (`Cache-Control: no-store`)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus, urlencode

from aiohttp import web

from base.inputs import loads_json
from hub.inputs import path_int
from hub.web.session import call, render, require_member
from members.apps import (
    OAuthError,
    Redirectable,
    apps_of,
    authenticate_client,
    authorization_request,
    delete_app,
    exchange_code,
    issue_code,
    register_app,
    revoke_token,
)

SCOPE_TEXT = {"flattr": "flattr things for you", "thing": "create, change and delete your things",
              "extendedread": "read your private details and your hidden things",
              "email": "read your e-mail address"}


def routes(app: web.Application) -> None:
    app.router.add_get("/apps", apps_page)
    app.router.add_post("/apps", register)
    app.router.add_post(r"/apps/{id:\d{1,18}}/delete", remove)
    app.router.add_get("/oauth/authorize", authorize_page)
    app.router.add_post("/oauth/authorize", authorize)
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/oauth/revoke", revoke)


async def apps_page(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    return await render(request, "apps.html", {"apps": await call(request, apps_of, me.id),
                                               "form": {}})


async def register(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    form = await request.post()
    name, uri = str(form.get("name", "")), str(form.get("redirect_uri", "")).strip()
    try:
        new = await call(request, register_app, me.id, name, uri)
    except OAuthError as exc:
        return await render(request, "apps.html", {
            "apps": await call(request, apps_of, me.id), "error": exc.description,
            "form": {"name": name, "redirect_uri": uri}}, status=400)
    return await render(request, "apps.html", {
        "apps": await call(request, apps_of, me.id), "new": new, "form": {},
        "notice": "Application registered. Copy the client secret now: it is not shown again."})


async def remove(request: web.Request) -> web.StreamResponse:
    me = await require_member(request)
    if not await call(request, delete_app, me.id, path_int(request, "id")):
        raise web.HTTPNotFound(reason="no such application")
    raise web.HTTPSeeOther("/apps")


async def authorize_page(request: web.Request) -> web.StreamResponse:
    await require_member(request)
    query = request.query
    try:
        app, scopes = await call(request, authorization_request, query.get("client_id", ""),
                                 query.get("redirect_uri"), query.get("response_type"),
                                 query.get("scope"))
    except Redirectable as exc:
        raise _back_with_error(exc, query.get("state")) from None
    except OAuthError as exc:
        return await render(request, "error.html", {"status": 400, "message": exc.description},
                            status=400)
    return await render(request, "authorize.html", {
        "app": app, "scopes": [(s, SCOPE_TEXT[s]) for s in scopes],
        "request": {k: query.get(k, "") for k in ("client_id", "redirect_uri", "scope", "state",
                                                   "response_type")}})


async def authorize(request: web.Request) -> web.StreamResponse:
    """The member's answer on the consent page (CSRF-checked like every form)."""
    me = await require_member(request)
    form = await request.post()
    asked = {k: str(form[k]) for k in ("client_id", "redirect_uri", "scope", "state",
                                       "response_type") if form.get(k)}
    try:
        app, scopes = await call(request, authorization_request, asked.get("client_id", ""),
                                 asked.get("redirect_uri"), asked.get("response_type"),
                                 asked.get("scope"))
    except Redirectable as exc:
        raise _back_with_error(exc, asked.get("state")) from None
    except OAuthError as exc:
        return await render(request, "error.html", {"status": 400, "message": exc.description},
                            status=400)
    if form.get("decision") != "allow":
        raise _back_with_error(Redirectable("access_denied", "the member refused",
                                            app.redirect_uri), asked.get("state"))
    code = await call(request, issue_code, app.id, me.id, scopes, asked.get("redirect_uri"))
    raise web.HTTPSeeOther(_redirect(app.redirect_uri, {"code": code,
                                                        "state": asked.get("state")}))


def _back_with_error(exc: Redirectable, state: str | None) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(_redirect(exc.redirect_uri, {
        "error": exc.error, "error_description": exc.description, "state": state}))


def _redirect(uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


async def token(request: web.Request) -> web.Response:
    try:
        values = await _token_params(request)
        client_id, secret = _client_credentials(request, values)
        if values.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code")
        if not values.get("code"):
            raise OAuthError("invalid_request", "code is required")
        app = await call(request, authenticate_client, client_id, secret)
        result = await call(request, exchange_code, app, values["code"],
                            values.get("redirect_uri") or None)
        if isinstance(result, OAuthError):
            raise result
    except OAuthError as exc:
        return _oauth_error(exc)
    return _token_reply({"access_token": result.access_token, "token_type": "bearer",
                         "scope": " ".join(result.scopes)}, 200)


async def revoke(request: web.Request) -> web.Response:
    """RFC 7009 token revocation: the client authenticates as at the token endpoint and posts
    `token` (`token_type_hint` is not needed: there are only access tokens); 200 with an empty
    body, also for a token that is unknown or already revoked."""
    try:
        values = await _token_params(request)
        client_id, secret = _client_credentials(request, values)
        if not values.get("token"):
            raise OAuthError("invalid_request", "token is required")
        app = await call(request, authenticate_client, client_id, secret)
        await call(request, revoke_token, app, values["token"])
    except OAuthError as exc:
        return _oauth_error(exc)
    return _token_reply({}, 200)


async def _token_params(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            data = loads_json(await request.read())
        except ValueError as exc:
            raise OAuthError("invalid_request", str(exc)) from None
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "the body must be a JSON object")
        return {str(k): v for k, v in data.items() if isinstance(v, str)}
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


def _client_credentials(request: web.Request, values: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401)
        return unquote_plus(client_id), unquote_plus(secret)
    if values.get("client_id") and values.get("client_secret"):
        return values["client_id"], values["client_secret"]
    raise OAuthError("invalid_client", "client authentication is required", 401)


def _oauth_error(exc: OAuthError) -> web.Response:
    answer = _token_reply({"error": exc.error, "error_description": exc.description}, exc.status)
    if exc.status == 401:
        answer.headers["WWW-Authenticate"] = 'Basic realm="flattr"'
    return answer


def _token_reply(data: dict[str, str], status: int) -> web.Response:
    answer = web.json_response(data, status=status)
    answer.headers["Cache-Control"] = "no-store"
    answer.headers["Pragma"] = "no-cache"
    answer.headers["Expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"  # as Flattr's: long expired
    return answer
