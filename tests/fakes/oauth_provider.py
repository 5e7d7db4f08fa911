"""A fake OAuth 2 provider speaking X's, Discord's, SoundCloud's, GitHub's, Vimeo's,
Dailymotion's, Google's (YouTube) and a Mastodon instance's documented formats, for tests of
linking and of logging in with a platform account.

`FakeOAuthProvider().app()` is an aiohttp application; serve it with `aiohttp_server` or
`tests.fakes.server.serve` and point the hub at it with `configure(config, url)`. Per platform
`p` in `PLATFORMS` it serves `GET /p/authorize` (auto-approves: a plain 302 back to the
`redirect_uri` with `code` and `state`, so a real browser can follow it), `POST /p/token` (checks
the client's authentication as that platform does, the code, the redirect URI and the PKCE
S256 verifier) and `GET /p/me` (the profile in the platform's own shape). As a Mastodon
instance it serves `POST /api/v1/apps`, `GET /oauth/authorize`, `POST /oauth/token` and
`GET /api/v1/accounts/verify_credentials`. `sign_in(platform, id, username)` chooses who is
signed in at the provider; `deny = True` makes the next authorisations come back refused.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from base.config import Settings, with_overrides

PLATFORMS = ("x", "discord", "soundcloud", "github", "vimeo", "dailymotion", "youtube")
PKCE_REQUIRED = {"x", "soundcloud"}
# X and Vimeo authenticate confidential clients with HTTP Basic; the others in the body
BASIC_AUTH = {"x", "vimeo"}
NO_EXPIRY = {"mastodon", "vimeo"}  # their tokens do not expire: no refresh token
CLIENT_ID, CLIENT_SECRET = "fake-client-id", "fake-client-secret"
PROFILE_SCHEME = {"soundcloud": "OAuth"}
MASTODON_HOST = "mastodon.example"


@dataclass
class Grant:
    platform: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    user: dict[str, str]


@dataclass
class FakeOAuthProvider:
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)  # Mastodon client id → app
    token_requests: list[dict[str, str]] = field(default_factory=list)
    deny: bool = False
    url: str = ""  # where the fake is served

    def sign_in(self, platform: str, user_id: str, username: str) -> None:
        """Who is signed in at `platform` (Mastodon: the local account of the fake instance)."""
        self.users[platform] = {"id": user_id, "username": username}

    def app(self) -> web.Application:
        app = web.Application()
        for platform in PLATFORMS:
            app.router.add_get(f"/{platform}/authorize", self._authorize(platform))
            app.router.add_post(f"/{platform}/token", self._token(platform))
            app.router.add_get(f"/{platform}/me", self._profile(platform))
        app.router.add_post("/api/v1/apps", self.register_app)
        app.router.add_get("/oauth/authorize", self._authorize("mastodon"))
        app.router.add_post("/oauth/token", self._token("mastodon"))
        app.router.add_get("/api/v1/accounts/verify_credentials", self._profile("mastodon"))
        return app

    async def register_app(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = f"app-{len(self.apps) + 1}", secrets.token_urlsafe(16)
        self.apps[client_id] = {"secret": secret, "scopes": str(form.get("scopes", "")),
                                "redirect_uris": str(form.get("redirect_uris", "")).split()}
        return web.json_response({"id": str(len(self.apps)), "name": form.get("client_name"),
                                  "client_id": client_id, "client_secret": secret,
                                  "redirect_uri": form.get("redirect_uris")})

    def _client_secret(self, platform: str, client_id: str) -> str | None:
        if platform == "mastodon":
            return self.apps.get(client_id, {}).get("secret")
        return CLIENT_SECRET if client_id == CLIENT_ID else None

    def _authorize(self, platform: str) -> Any:
        async def authorize(request: web.Request) -> web.StreamResponse:
            query = request.query
            client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
            if self._client_secret(platform, client_id) is None or not redirect_uri:
                return web.Response(status=400, text="unknown client")
            if platform == "mastodon" and redirect_uri not in self.apps[client_id]["redirect_uris"]:
                return web.Response(status=400, text="redirect_uri not registered")
            back = {"state": query.get("state", "")}
            challenge = query.get("code_challenge")
            if query.get("response_type") != "code" or (
                    platform in PKCE_REQUIRED
                    and (not challenge or query.get("code_challenge_method") != "S256")):
                back["error"] = "invalid_request"
            elif self.deny or platform not in self.users:
                back["error"] = "access_denied"
            else:
                code = secrets.token_urlsafe(16)
                self.codes[code] = Grant(platform, client_id, redirect_uri, challenge,
                                         self.users[platform])
                back["code"] = code
            raise web.HTTPFound(f"{redirect_uri}?{urlencode(back)}")
        return authorize

    def _token(self, platform: str) -> Any:
        async def token(request: web.Request) -> web.Response:
            form = {k: str(v) for k, v in (await request.post()).items()}
            self.token_requests.append({"platform": platform, **form})
            client_id, secret = _client_auth(request, form, platform in BASIC_AUTH)
            if secret is None or secret != self._client_secret(platform, client_id):
                return web.json_response({"error": "invalid_client"}, status=401)
            grant = self.codes.pop(form.get("code", ""), None)
            if (grant is None or grant.platform != platform or grant.client_id != client_id
                    or form.get("grant_type") != "authorization_code"
                    or form.get("redirect_uri") != grant.redirect_uri
                    or (grant.challenge is not None
                        and _challenge(form.get("code_verifier", "")) != grant.challenge)):
                if platform == "github":  # GitHub answers a bad code with 200 and an error
                    return web.json_response({"error": "bad_verification_code"})
                return web.json_response({"error": "invalid_grant"}, status=400)
            access = f"{platform}-access-{secrets.token_urlsafe(12)}"
            self.tokens[access] = (platform, grant.user)
            body: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
            if platform == "vimeo":  # Vimeo's token answer carries the user
                body.update(scope="public", user=profile_document(platform, grant.user))
            if platform not in NO_EXPIRY:
                body.update(expires_in=7200, refresh_token=f"{platform}-refresh-"
                            + secrets.token_urlsafe(12))
            if platform == "github" and "application/json" not in request.headers.get(
                    "Accept", ""):
                return web.Response(text=urlencode(body),
                                    content_type="application/x-www-form-urlencoded")
            return web.json_response(body)
        return token

    def _profile(self, platform: str) -> Any:
        async def profile(request: web.Request) -> web.Response:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            found = self.tokens.get(token)
            if scheme != PROFILE_SCHEME.get(platform, "Bearer") or found is None \
                    or found[0] != platform:
                return web.json_response({"error": "unauthorized"}, status=401)
            return web.json_response(profile_document(platform, found[1]))
        return profile


def profile_document(platform: str, user: dict[str, str]) -> dict[str, Any]:
    """The profile answer each platform documents, for the signed-in user."""
    uid, name = user["id"], user["username"]
    if platform == "x":
        return {"data": {"id": uid, "name": name.title(), "username": name}}
    if platform == "discord":
        return {"id": uid, "username": name, "discriminator": "0", "global_name": name.title(),
                "avatar": None}
    if platform == "soundcloud":
        return {"id": int(uid), "urn": f"soundcloud:users:{uid}", "kind": "user",
                "permalink": name, "username": name.title()}
    if platform == "github":
        return {"id": int(uid), "login": name, "type": "User", "name": name.title()}
    if platform == "vimeo":
        return {"uri": f"/users/{uid}", "name": name, "link": f"https://vimeo.com/user{uid}",
                "account": "free"}
    if platform == "dailymotion":
        return {"id": uid, "username": name, "screenname": name.title()}
    if platform == "youtube":  # channels?mine=true&part=id,snippet
        return {"kind": "youtube#channelListResponse", "pageInfo": {"totalResults": 1},
                "items": [{"kind": "youtube#channel", "id": uid,
                           "snippet": {"title": name, "customUrl": f"@{name}"}}]}
    return {"id": uid, "username": name, "acct": name, "display_name": name.title(),
            "url": f"https://{MASTODON_HOST}/@{name}"}


def configure(config: Settings, url: str) -> Settings:
    """`config` with every platform's linking pointed at the fake served at `url` (and on)."""
    overrides: dict[str, Any] = {
        f"connectors.{platform}": {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "oauth_authorize_url": f"{url}/{platform}/authorize",
            "profile_url": f"{url}/{platform}/me",
            "token_url" if platform == "soundcloud" else "oauth_token_url":
                f"{url}/{platform}/token"}
        for platform in PLATFORMS}
    overrides["connectors.mastodon"] = {"enabled": True, "api_base": url}
    return with_overrides(config, overrides)


def _client_auth(request: web.Request, form: dict[str, str],
                 basic: bool) -> tuple[str, str | None]:
    if not basic:
        return form.get("client_id", ""), form.get("client_secret")
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Basic":
        return "", None
    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    return client_id, secret


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()
