"""A platform's answer is hostile until checked, its size too: the pollers read at most
`MAX_ANSWER_BYTES` of it (after decompression), through requests or YouTube's httplib2, so a
huge page or a small gzip bomb fails one poll with a backoff instead of filling the worker's
memory."""

from __future__ import annotations

import gzip
import json

import pytest
import requests
from aiohttp import web
from httplib2.decode import DecodeLimitError

from connectors.poll_http import MAX_ANSWER_BYTES, AnswerTooLarge, capped, route
from connectors.youtube import capped_http
from tests.fakes.server import serve

BOMB = gzip.compress(b"\0" * (MAX_ANSWER_BYTES * 8))  # 32 MiB of zeros in about 32 KiB


def answers() -> web.Application:
    async def small(_: web.Request) -> web.Response:
        return web.json_response({"data": []})

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * (MAX_ANSWER_BYTES + 1))

    async def bomb(_: web.Request) -> web.Response:
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip"})

    async def exact(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * MAX_ANSWER_BYTES)

    app = web.Application()
    for path, handler in (("/small", small), ("/big", big), ("/bomb", bomb), ("/exact", exact)):
        app.router.add_get(path, handler)
    return app


@pytest.mark.parametrize("stream", [False, True])
def test_a_capped_session_refuses_answers_past_the_cap_even_compressed(stream) -> None:
    assert len(BOMB) < MAX_ANSWER_BYTES // 16
    with serve(answers()) as url, capped(requests.Session()) as session:
        assert session.get(f"{url}/small", stream=stream).json() == {"data": []}
        assert len(session.get(f"{url}/exact", stream=stream).content) == MAX_ANSWER_BYTES
        for path in ("/big", "/bomb"):
            with pytest.raises(AnswerTooLarge, match=str(MAX_ANSWER_BYTES)):
                session.get(f"{url}{path}", stream=stream)
        assert session.get(f"{url}/small").ok  # the session goes on after a refusal


def test_route_caps_the_client_librarys_session_with_or_without_a_fake() -> None:
    with serve(answers()) as url:
        for session in (route(requests.Session(), "https://api.example", url),
                        route(requests.Session(), "https://api.example", "")):
            with session, pytest.raises(AnswerTooLarge):
                session.get(f"{url}/bomb")



def test_youtubes_httplib2_transport_refuses_answers_past_the_cap_even_compressed() -> None:
    """httplib2 reads whole answers: `capped_http` stops reading (AnswerTooLarge) and
    decompressing (httplib2's own DecodeLimitError) past the cap."""
    with serve(answers()) as url:
        http = capped_http()
        response, content = http.request(f"{url}/small")
        assert (response.status, json.loads(content)) == (200, {"data": []})
        assert len(http.request(f"{url}/exact")[1]) == MAX_ANSWER_BYTES
        with pytest.raises(AnswerTooLarge, match=str(MAX_ANSWER_BYTES)):
            http.request(f"{url}/big")
        with pytest.raises(DecodeLimitError):
            http.request(f"{url}/bomb")
        assert http.request(f"{url}/small")[0].status == 200
