"""Fake platform APIs in each platform's documented shape, for tests and the benchmark.

Each fake keeps per-user liked lists (newest first), accepts only the access tokens it
issued, swaps a refresh token for a new pair exactly once (single-use, as SoundCloud and X
do), and enforces a per-token rate window (answering 429 with the platform's reset header)
and, optionally, an app-wide requests-per-second limit. It counts what it served.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@dataclass
class FakePlatform:
    page_size: int = 2
    window_requests: int = 10_000
    window_seconds: float = 900
    app_per_second: float = 0  # 0: no app-wide limit
    issue_dead_tokens: bool = False  # refresh hands out access tokens it then refuses
    likes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> user
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # single-use
    stats: Counter[str] = field(default_factory=Counter)
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    _issued: int = 0
    _bucket: tuple[float, float] = (0.0, 0.0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_user(self, user: str, token: str, refresh: str | None = None,
                 likes: list[dict[str, Any]] | None = None) -> None:
        self.tokens[token] = user
        if refresh:
            self.refresh_tokens[refresh] = user
        self.likes[user] = list(likes or [])

    def expire(self, token: str) -> None:
        self.tokens.pop(token, None)

    def auth(self, request: web.Request, scheme: str) -> str:
        header = request.headers.get("Authorization", "")
        user = self.tokens.get(header.removeprefix(f"{scheme} "))
        if not header.startswith(f"{scheme} ") or user is None:
            self.stats["401"] += 1
            raise web.HTTPUnauthorized(text='{"error": "invalid_token"}',
                                       content_type="application/json")
        return user

    def limit(self, key: str, reset_header: str) -> None:
        """Per-token window and the app-wide limit: 429 with the reset time when exceeded."""
        now = time.time()
        with self._lock:
            if self.app_per_second:
                level, last = self._bucket
                level = max(0.0, level - (now - last) * self.app_per_second)
                if level + 1 > max(1.0, self.app_per_second):
                    self.stats["429"] += 1
                    raise web.HTTPTooManyRequests(headers={reset_header: str(int(now) + 1)})
                self._bucket = (level + 1, now)
            start, used = self.windows.get(key, (now, 0))
            if now >= start + self.window_seconds:
                start, used = now, 0
            if used >= self.window_requests:
                self.stats["429"] += 1
                raise web.HTTPTooManyRequests(
                    headers={reset_header: str(int(start + self.window_seconds))})
            self.windows[key] = (start, used + 1)
            self.stats["requests"] += 1

    def page(self, user: str, offset: int, size: int) -> tuple[list[dict[str, Any]], int | None]:
        items = self.likes.get(user, [])
        size = min(size, self.page_size)
        chunk = items[offset:offset + size]
        return chunk, offset + size if offset + size < len(items) else None

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        refresh = str(form.get("refresh_token", ""))
        user = self.refresh_tokens.pop(refresh, None)  # single-use
        self.stats["refresh"] += 1
        if form.get("grant_type") != "refresh_token" or user is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        self._issued += 1
        access, new_refresh = f"access-{self._issued}", f"refresh-{self._issued}"
        if not self.issue_dead_tokens:
            self.tokens[access] = user
        self.refresh_tokens[new_refresh] = user
        return web.json_response({"access_token": access, "refresh_token": new_refresh,
                                  "token_type": "bearer", "expires_in": 7200})


class FakeX(FakePlatform):
    """`GET /2/users/:id/liked_tweets` (bearer user token, `next_token` paging) and
    `POST /2/oauth2/token`."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/2/users/{id}/liked_tweets", self.liked_tweets)
        app.router.add_post("/2/oauth2/token", self.token)
        return app

    async def liked_tweets(self, request: web.Request) -> web.Response:
        user = self.auth(request, "Bearer")
        if user != request.match_info["id"]:
            return web.json_response({"title": "Forbidden"}, status=403)
        self.limit(request.headers["Authorization"], "x-rate-limit-reset")
        self.stats["expansions:" + request.query.get("expansions", "")] += 1
        offset = int(request.query.get("pagination_token", "p0")[1:] or 0)
        tweets, following = self.page(user, offset, int(request.query.get("max_results", 100)))
        authors = {t["author_id"]: {"id": t["author_id"], "name": t["author_id"],
                                    "username": t["author_id"]} for t in tweets}
        meta: dict[str, Any] = {"result_count": len(tweets)}
        if following is not None:
            meta["next_token"] = f"p{following}"
        body: dict[str, Any] = {"meta": meta}
        if tweets:  # X adds edit_history_tweet_ids to every tweet by default
            tweets = [{"edit_history_tweet_ids": [t["id"]], **t} for t in tweets]
            body.update(data=tweets, includes={"users": list(authors.values())})
        return web.json_response(body)


class FakeSoundCloud(FakePlatform):
    """`GET /me/likes/tracks?linked_partitioning=true` (`Authorization: OAuth`), whose
    `next_href` is an absolute URL on api.soundcloud.com, and `POST /oauth/token`."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/me/likes/tracks", self.liked_tracks)
        app.router.add_post("/oauth/token", self.token)
        return app

    async def liked_tracks(self, request: web.Request) -> web.Response:
        user = self.auth(request, "OAuth")
        self.limit(request.headers["Authorization"], "x-ratelimit-reset")
        if request.query.get("linked_partitioning") != "true":
            return web.json_response({"error": "linked_partitioning"}, status=400)
        offset = int(request.query.get("cursor", 0))
        tracks, following = self.page(user, offset, int(request.query.get("limit", 50)))
        next_href = None
        if following is not None:
            next_href = "https://api.soundcloud.com/me/likes/tracks?" + urlencode(
                {"cursor": following, "linked_partitioning": "true", "limit": 50})
        return web.json_response({"collection": tracks, "next_href": next_href})


class FakeMastodon(FakePlatform):
    """`GET /api/v1/favourites` (bearer token, `limit` ≤ 40) paging only through the `Link`
    header with favourite ids of its own, and `POST /api/v1/apps`."""

    host: str = "https://mastodon.example"
    apps: list[dict[str, Any]]

    def app(self) -> web.Application:
        self.apps = []
        app = web.Application()
        app.router.add_get("/api/v1/favourites", self.favourites)
        app.router.add_post("/api/v1/apps", self.register)
        return app

    async def favourites(self, request: web.Request) -> web.Response:
        user = self.auth(request, "Bearer")
        self.limit(request.headers["Authorization"], "X-RateLimit-Reset")
        limit = min(40, int(request.query.get("limit", 20)))
        items = self.likes.get(user, [])
        # favourite ids: 9000 - position (newest first, descending); max_id pages backwards
        max_id = int(request.query.get("max_id", 10**9))
        start = next((i for i in range(len(items)) if 9000 - i < max_id), len(items))
        chunk = items[start:start + min(limit, self.page_size)]
        headers = {}
        if start + len(chunk) < len(items):
            last = 9000 - (start + len(chunk) - 1)
            headers["Link"] = (f'<{self.host}/api/v1/favourites?max_id={last}>; rel="next", '
                               f'<{self.host}/api/v1/favourites?min_id={9000 - start}>; '
                               'rel="prev"')
        return web.json_response(chunk, headers=headers)

    async def register(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) or await request.json()
        self.apps.append(dict(form))
        n = len(self.apps)
        return web.json_response({"id": str(n), "name": form.get("client_name"),
                                  "client_id": f"app-id-{n}", "client_secret": f"app-secret-{n}",
                                  "redirect_uri": form.get("redirect_uris")})


def tweet(n: int, author: str) -> dict[str, Any]:
    return {"id": str(1_900_000_000_000_000_000 + n), "text": f"post {n}", "author_id": author}


def track(n: int, owner: int) -> dict[str, Any]:
    return {"kind": "track", "id": n, "urn": f"soundcloud:tracks:{n}", "title": f"Track {n}",
            "permalink_url": f"https://soundcloud.com/u{owner}/track-{n}",
            "user": {"kind": "user", "id": owner, "urn": f"soundcloud:users:{owner}",
                     "username": f"u{owner}", "permalink_url": f"https://soundcloud.com/u{owner}"}}


def status(n: int, acct: str) -> dict[str, Any]:
    username = acct.split("@")[0]
    host = acct.split("@")[1] if "@" in acct else "mastodon.example"
    return {"id": str(113_000_000_000_000_000 + n), "created_at": "2026-10-01T12:00:00.000Z",
            "url": f"https://{host}/@{username}/{113_000_000_000_000_000 + n}",
            "content": f"<p>status {n}</p>", "favourited": True,
            "account": {"id": str(n), "username": username, "acct": acct,
                        "url": f"https://{host}/@{username}"}}
