"""A fake Flickr: the REST endpoint's `flickr.favorites.getList` and the OAuth 1.0a endpoints
(request token, authorize, access token), in Flickr's documented formats.

Every request must be signed (HMAC-SHA1, OAuth 1.0a) with the app's key and secret and, for the
access-token and REST calls, the token's secret: the fake checks the signature with oauthlib
and refuses a reused nonce. API errors answer HTTP 200 with `{"stat": "fail", "code": …}` as
Flickr does (96 invalid signature, 98 invalid auth token, 100 invalid API key); `limited`
answers 429 with `Retry-After`. Favourites are kept per user NSID, newest first, and pages are
`per_page` long.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature

from tests.fakes.platforms import FIXTURES

API_KEY = "flickr-api-key"
API_SECRET = "flickr-api-secret"


@dataclass
class FakeFlickr:
    faves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # nsid -> newest first
    usernames: dict[str, str] = field(default_factory=dict)
    access: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (secret, nsid)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)  # request tokens
    signed_in: str = ""  # the NSID that approves at /authorize
    limited: int = 0  # answer this many requests with 429
    extra_entries: list[Any] = field(default_factory=list)  # appended to every page
    body_override: str | None = None  # the REST answer's raw body, when set
    nonces: set[tuple[str, str]] = field(default_factory=set)
    calls: list[dict[str, str]] = field(default_factory=list)  # REST parameters as received
    stats: Counter[str] = field(default_factory=Counter)

    def add_user(self, nsid: str, username: str, token: str, secret: str,
                 faves: list[dict[str, Any]] | None = None) -> None:
        self.usernames[nsid] = username
        self.access[token] = (secret, nsid)
        self.faves[nsid] = list(faves or [])

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/services/rest/", self.rest)
        app.router.add_post("/services/oauth/request_token", self.request_token)
        app.router.add_get("/services/oauth/authorize", self.authorize)
        app.router.add_post("/services/oauth/access_token", self.access_token)
        return app

    async def _signed(self, request: web.Request, secret_of: dict[str, str],
                      oauth: bool = False) -> dict[str, str]:
        """The request's parameters when its OAuth 1.0a signature verifies (the token's secret
        from `secret_of`), else an HTTPException in Flickr's way (the OAuth endpoints' 401
        `oauth_problem`, the REST endpoint's `stat: fail`)."""
        body = await request.text()
        params = signature.collect_parameters(
            uri_query=request.rel_url.raw_query_string, body=body or None,
            headers=dict(request.headers), exclude_oauth_signature=False)
        given = dict(params)
        if given.get("oauth_consumer_key") != API_KEY:
            self.stats["bad_key"] += 1
            raise (web.HTTPUnauthorized(text="oauth_problem=consumer_key_unknown") if oauth
                   else _fail(100, "Invalid API Key (Key not found)"))
        checked = OAuthRequest(str(request.url), request.method, body, dict(request.headers))
        checked.params = [(k, v) for k, v in params if k != "oauth_signature"]
        checked.signature = given.get("oauth_signature", "")
        token = given.get("oauth_token", "")
        if token and token not in secret_of:
            self.stats["bad_token"] += 1
            raise (web.HTTPUnauthorized(text="oauth_problem=token_rejected") if oauth
                   else _fail(98, "Invalid auth token"))
        nonce = (given.get("oauth_timestamp", ""), given.get("oauth_nonce", ""))
        if (given.get("oauth_signature_method") != "HMAC-SHA1" or nonce in self.nonces
                or not signature.verify_hmac_sha1(checked, API_SECRET,
                                                  secret_of.get(token, ""))):
            self.stats["bad_signature"] += 1
            raise (web.HTTPUnauthorized(text="oauth_problem=signature_invalid") if oauth
                   else _fail(96, "Invalid signature"))
        self.nonces.add(nonce)
        return given

    async def rest(self, request: web.Request) -> web.Response:
        self.stats["rest"] += 1
        if self.limited:
            self.limited -= 1
            self.stats["429"] += 1
            raise web.HTTPTooManyRequests(headers={"Retry-After": "120"})
        given = await self._signed(request, {t: s for t, (s, _) in self.access.items()})
        self.calls.append(given)
        if "oauth_token" not in given:
            raise _fail(99, "Insufficient permissions. Method requires read privileges; none "
                        "granted.")
        if given.get("method") != "flickr.favorites.getList" or given.get("format") != "json":
            raise _fail(112, "Method not found")
        if self.body_override is not None:
            return web.Response(text=self.body_override, content_type="application/json")
        nsid = self.access[given["oauth_token"]][1]
        since = int(given.get("min_fave_date") or 0)
        faves = [f for f in self.faves[nsid] if int(f["date_faved"]) >= since]
        per_page = min(500, int(given.get("per_page") or 100))
        page = max(1, int(given.get("page") or 1))
        pages = max(1, -(-len(faves) // per_page))
        shown = [_with_extras(f, given.get("extras", ""))
                 for f in faves[(page - 1) * per_page:page * per_page]]
        return web.json_response({"photos": {
            "page": page, "pages": pages, "perpage": per_page, "total": str(len(faves)),
            "photo": shown + self.extra_entries}, "stat": "ok"})

    async def request_token(self, request: web.Request) -> web.Response:
        given = await self._signed(request, {}, oauth=True)
        callback = given.get("oauth_callback", "")
        if not callback:
            raise web.HTTPBadRequest(text="oauth_problem=parameter_absent")
        token, secret = "rt-" + secrets.token_hex(8), secrets.token_hex(16)
        self.pending[token] = {"secret": secret, "callback": callback}
        self.stats["request_token"] += 1
        return _form({"oauth_callback_confirmed": "true", "oauth_token": token,
                      "oauth_token_secret": secret})

    async def authorize(self, request: web.Request) -> web.Response:
        token = request.query.get("oauth_token", "")
        if token not in self.pending or request.query.get("perms") != "read":
            raise web.HTTPBadRequest(text="unknown request token or perms")
        grant = self.pending[token]
        grant.update(verifier=secrets.token_hex(8), nsid=self.signed_in)
        callback = grant["callback"]
        query = urlencode({"oauth_token": token, "oauth_verifier": grant["verifier"]})
        raise web.HTTPFound(f"{callback}{'&' if '?' in callback else '?'}{query}")

    async def access_token(self, request: web.Request) -> web.Response:
        given = await self._signed(request, {t: g["secret"] for t, g in self.pending.items()},
                                   oauth=True)
        grant = self.pending.pop(given.get("oauth_token", ""), None)
        if grant is None or grant.get("verifier") != given.get("oauth_verifier"):
            raise web.HTTPUnauthorized(text="oauth_problem=token_rejected")
        nsid = grant["nsid"]
        token, secret = "at-" + secrets.token_hex(8), secrets.token_hex(16)
        self.access[token] = (secret, nsid)
        self.faves.setdefault(nsid, [])
        self.stats["access_token"] += 1
        return _form({"fullname": "Pjotr Flickr", "oauth_token": token,
                      "oauth_token_secret": secret, "user_nsid": nsid,
                      "username": self.usernames.get(nsid, "pjotr")})


def photo(n: int, owner: str, faved_at: int | None = None, title: str | None = None,
          ownername: str = "lumen") -> dict[str, Any]:
    """A favourite as getList lists it (with `extras=owner_name`)."""
    return {"id": str(n), "owner": owner, "secret": "1e92283336", "server": "65535",
            "farm": 66, "title": f"Photo {n}" if title is None else title, "ispublic": 1,
            "isfriend": 0, "isfamily": 0,
            "date_faved": str(faved_at if faved_at is not None else int(time.time())),
            "ownername": ownername}


def fixture_faves() -> list[dict[str, Any]]:
    """The documented example page's favourites (tests/fixtures)."""
    page = json.loads((FIXTURES / "flickr-favorites-getlist.json").read_text(encoding="utf-8"))
    return list(page["photos"]["photo"])


def _with_extras(fave: dict[str, Any], extras: str) -> dict[str, Any]:
    shown = dict(fave)
    if "owner_name" not in extras.split(","):
        shown.pop("ownername", None)
    return shown


def _fail(code: int, message: str) -> web.HTTPException:
    return web.HTTPOk(text=json.dumps({"stat": "fail", "code": code, "message": message}),
                      content_type="application/json")


def _form(values: dict[str, str]) -> web.Response:
    return web.Response(text=urlencode(values), content_type="text/plain")
