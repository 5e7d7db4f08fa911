"""Fake Vimeo, Dailymotion and YouTube Data APIs in each platform's documented shape, for the
video pollers' tests (the same bookkeeping as `tests.fakes.platforms`: per-user liked lists,
newest first, issued tokens only, single-use refresh tokens, a per-token rate window, counts).

- Vimeo: `GET /me/likes` (`page`, `per_page` ≤ 100, `fields`), `paging.next` a relative path;
  the API version in `Accept`; `X-RateLimit-Remaining` on every answer and, on 429,
  `X-RateLimit-Reset` as an ISO 8601 time.
- Dailymotion: `GET /me/likes` (`fields`, `page`, `limit` ≤ 100) answering the Graph API's
  list (`page`, `limit`, `has_more`, `list`), only the asked fields; `POST /oauth/token` wants
  the client credentials in the form; 429 with `Retry-After`.
- YouTube: `GET /youtube/v3/videos?myRating=like&part=snippet` (`maxResults` ≤ 50,
  `pageToken`/`nextPageToken`), Google's error body (`error.errors[].reason`), a daily quota
  of units (403 `quotaExceeded` beyond it); `POST /token` (Google's refresh grant).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.platforms import FakePlatform

VIMEO_ACCEPT = "application/vnd.vimeo.*;version=3.4"


class FakeVimeo(FakePlatform):
    answer: Any = None  # a body answered instead of the page (hostile tests)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/me/likes", self.liked_videos)
        return app

    async def liked_videos(self, request: web.Request) -> web.Response:
        user = self.auth(request, "Bearer")
        if request.headers.get("Accept") != VIMEO_ACCEPT:
            return web.json_response({"error": "unsupported Accept"}, status=406)
        try:
            self.limit(request.headers["Authorization"], "X-RateLimit-Reset")
        except web.HTTPTooManyRequests as exc:
            unix = int(exc.headers["X-RateLimit-Reset"])
            raise web.HTTPTooManyRequests(headers={
                "X-RateLimit-Reset": datetime.fromtimestamp(unix, UTC).isoformat(),
                "X-RateLimit-Remaining": "0"}) from None
        self.stats["fields:" + request.query.get("fields", "")] += 1
        if self.answer is not None:
            return web.json_response(self.answer)
        page = int(request.query.get("page", 1))
        size = min(100, int(request.query.get("per_page", 25)), self.page_size)
        videos, following = self.page(user, (page - 1) * size, size)
        body = {"total": len(self.likes.get(user, [])), "page": page, "per_page": size,
                "paging": {"next": f"/me/likes?page={page + 1}&per_page={size}"
                           if following is not None else None,
                           "previous": f"/me/likes?page={page - 1}" if page > 1 else None},
                "data": videos}
        used = self.windows[request.headers["Authorization"]][1]
        return web.json_response(body, headers={
            "X-RateLimit-Limit": str(self.window_requests),
            "X-RateLimit-Remaining": str(max(0, self.window_requests - used))})


class FakeDailymotion(FakePlatform):
    has_more: Any = None  # answered instead of the true value when not None (hostile tests)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/me/likes", self.liked_videos)
        app.router.add_post("/oauth/token", self.refresh_grant)
        return app

    async def liked_videos(self, request: web.Request) -> web.Response:
        user = self.auth(request, "Bearer")
        key = request.headers["Authorization"]
        start, used = self.windows.get(key, (time.time(), 0))
        if used >= self.window_requests and time.time() < start + self.window_seconds:
            self.stats["429"] += 1
            return web.json_response({"error": {"code": 429, "message": "Too many requests"}},
                                     status=429, headers={"Retry-After": "120"})
        self.limit(key, "Retry-After")
        fields = [f for f in request.query.get("fields", "id").split(",") if f]
        page = int(request.query.get("page", 1))
        size = min(100, int(request.query.get("limit", 10)), self.page_size)
        videos, following = self.page(user, (page - 1) * size, size)
        return web.json_response({
            "page": page, "limit": size, "explicit": False,
            "total": len(self.likes.get(user, [])),
            "has_more": following is not None if self.has_more is None else self.has_more,
            "list": [{f: v.get(f) for f in fields} if isinstance(v, dict) else v
                     for v in videos]})

    async def refresh_grant(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not form.get("client_id") or not form.get("client_secret"):
            return web.json_response({"error": "invalid_client"}, status=401)
        return await self.token(request)


class FakeYouTube(FakePlatform):
    quota: int = 10_000
    used_units: int = 0
    answer: str | None = None  # a raw body answered instead of the page (hostile tests)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/youtube/v3/videos", self.liked_videos)
        app.router.add_post("/token", self.refresh_grant)
        return app

    async def liked_videos(self, request: web.Request) -> web.Response:
        query = request.query
        header = request.headers.get("Authorization", "")
        if self.tokens.get(header.removeprefix("Bearer ")) is None:
            self.stats["401"] += 1
            return google_error(401, "authError", "Request had invalid authentication "
                                "credentials.")
        user = self.tokens[header.removeprefix("Bearer ")]
        if self.used_units >= self.quota:
            self.stats["quota"] += 1
            return google_error(403, "quotaExceeded", "The request cannot be completed "
                                "because you have exceeded your quota.")
        self.used_units += 1
        self.stats["requests"] += 1
        if query.get("myRating") != "like" or query.get("part") != "snippet":
            return google_error(400, "invalidParameter", "myRating=like&part=snippet wanted")
        if self.answer is not None:
            return web.Response(text=self.answer, content_type="application/json")
        size = min(50, int(query.get("maxResults", 5)), self.page_size)
        offset = int(query.get("pageToken", "CAA")[3:] or 0)
        videos, following = self.page(user, offset, size)
        body: dict[str, Any] = {
            "kind": "youtube#videoListResponse", "etag": f"etag-{offset}",
            "pageInfo": {"totalResults": len(self.likes.get(user, [])),
                         "resultsPerPage": size},
            "items": videos}
        if following is not None:
            body["nextPageToken"] = f"CAA{following}"
        return web.json_response(body)

    async def refresh_grant(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        if not form.get("client_id") or not form.get("client_secret"):
            return web.json_response({"error": "invalid_client"}, status=401)
        return await self.token(request)


def google_error(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "errors": [
        {"message": message, "domain": "youtube.quota" if reason == "quotaExceeded"
         else "global", "reason": reason}]}}, status=status)


def vimeo_video(n: int, owner: int) -> dict[str, Any]:
    return {"uri": f"/videos/{n}", "name": f"Video {n}", "link": f"https://vimeo.com/{n}",
            "user": {"uri": f"/users/{owner}"}}


def dailymotion_video(n: int, owner: str) -> dict[str, Any]:
    return {"id": f"x{n:06d}", "title": f"Video {n}",
            "url": f"https://www.dailymotion.com/video/x{n:06d}", "owner": owner,
            "views_total": 10}


def youtube_video(n: int, channel: str) -> dict[str, Any]:
    video_id = f"vid{n:08d}"
    return {"kind": "youtube#video", "etag": f"e{n}", "id": video_id,
            "snippet": {"channelId": channel, "title": f"Video {n}",
                        "channelTitle": "A channel", "publishedAt": "2026-10-01T12:00:00Z"}}
