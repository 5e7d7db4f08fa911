"""Absolute links are built from hub.base_url, never from the request's Host header (a
stranger's choice); outside loopback, `serve` and `up` refuse to start without base_url."""

from __future__ import annotations

import pytest

from base.config import with_overrides
from base.links import base_url, loopback
from flattr_hub.cli import main
from hub.app import create_app
from tests.rest_helpers import member, thing

pytest_plugins = ["tests.hub_fixtures"]

EVIL = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


async def test_api_links_ignore_the_host_header(hub_client, hub_config, engine, redis,
                                                aiohttp_client):
    tid = thing(engine, member(engine, hub_config, "bo"), "https://bo.example/post")
    found = await hub_client.get("/rest/v2/things/lookup?url=https://bo.example/post",
                                 headers=EVIL, allow_redirects=False)
    assert found.status == 302
    assert found.headers["Location"] == f"http://127.0.0.1:8080/rest/v2/things/{tid}"
    one = await (await hub_client.get(f"/rest/v2/things/{tid}", headers=EVIL)).text()
    assert "evil.example" not in one and "http://127.0.0.1:8080/rest/v2/things" in one
    page = await (await hub_client.get("/button/demo", headers=EVIL)).text()
    assert "evil.example" not in page

    public = await aiohttp_client(create_app(
        with_overrides(hub_config, {"hub.base_url": "https://hub.example.org/"}), engine, redis))
    found = await public.get("/rest/v2/things/lookup?url=https://bo.example/post",
                                 headers=EVIL, allow_redirects=False)
    assert found.headers["Location"] == f"https://hub.example.org/rest/v2/things/{tid}"


def test_the_one_helper(config):
    assert base_url(config) == "http://127.0.0.1:8080"
    config = with_overrides(config, {"hub": dict(host="::1", port=9000)})
    assert base_url(config) == "http://[::1]:9000"
    config = with_overrides(config, {"hub.base_url": "https://hub.example.org/"})
    assert base_url(config) == "https://hub.example.org"
    assert [loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost")] == [True] * 4
    assert [loopback(h) for h in ("0.0.0.0", "::", "", "10.0.0.1", "hub.example")] == [False] * 5


@pytest.mark.parametrize("command", ["serve", "up"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_serve_and_up_refuse_to_listen_outside_loopback_without_base_url(
        command, host, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLATTR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("FLATTR_HUB__BASE_URL", raising=False)
    assert main([command, "--host", host, "--port", "9"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("flattr-hub") and "hub.base_url must be set" in err
