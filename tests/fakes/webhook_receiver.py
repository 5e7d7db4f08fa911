"""A webhook receiver, as a creator's or partner's server would run: an aiohttp application that
answers POST /hook with given statuses in turn and keeps each request's headers and body, so a
test can verify the Standard Webhooks signature of what the hub sent."""

from __future__ import annotations

from aiohttp import web


class Receiver:
    """Answers with `statuses` in turn (the last one from then on)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        return app
