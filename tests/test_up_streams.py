"""`flattr-hub up` runs the long-lived stream connectors as supervised children: with Discord's
bot token configured it starts `discord-bot` against the fake gateway, which records a reaction
as a flattr and shows on `/healthz`, and Ctrl-C stops the bot with everything else (no process
left, checked with psutil); a bot that keeps failing is restarted with a doubling wait, then
given up with one line while the rest keeps running. Both backends (the database and Redis of
the test, passed to `up`)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from sqlalchemy import select

from base.config import with_overrides
from connectors import registry
from connectors.streams import StreamListener, configured_streams
from flattr_hub.cli import COMMANDS
from flattr_hub.supervisor import StreamSupervisor
from ledger.schema import flattrs
from tests.discord_helpers import people
from tests.fakes.discord_gateway import TOKEN, fake_gateway

pytest_plugins = ["tests.hub_fixtures"]

WAIT_SECONDS = 90


class Up:
    """`flattr-hub up` as a child of the test, its output collected line by line."""

    def __init__(self, cwd: Any, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flattr_hub.cli", "up", "--port", "0"], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._collect, args=(pipe, lines), daemon=True)
                        for pipe, lines in ((self.process.stdout, self.out),
                                            (self.process.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _collect(pipe: Any, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)

    async def until(self, found: Any, what: str) -> Any:
        """Wait (at most WAIT_SECONDS) for `found()` to be true while `up` runs."""
        for _ in range(WAIT_SECONDS * 10):
            if (result := found()):
                return result
            assert self.process.poll() is None, f"up exited: {''.join(self.err)}"
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {what}: {''.join(self.out)}{''.join(self.err)}")

    def url(self) -> str | None:
        found = re.search(r"up at (http://\S+) ", "".join(self.out))
        return found.group(1) if found else None

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=WAIT_SECONDS)
        for reader in self.readers:
            reader.join(timeout=10)


@pytest.fixture
def up_env(hub_config, db_url: str, redis_url: str, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    env.update(FLATTR_DATABASE_URL=db_url, FLATTR_REDIS_URL=redis_url, PYTHONUNBUFFERED="1",
               FLATTR_DATA_DIR=str(tmp_path / "var"),
               FLATTR_CONNECTORS__DISCORD__BOT_TOKEN=TOKEN)
    return env


def gateway_env(server: Any) -> dict[str, str]:
    return {"FLATTR_CONNECTORS__DISCORD__API_BASE": str(server.make_url("")).rstrip("/"),
            "FLATTR_CONNECTORS__DISCORD__GATEWAY_URL":
                str(server.make_url("/gw")).replace("http", "ws", 1)}


@pytest.fixture
def running(tmp_path) -> Iterator[list[Up]]:
    """The `up` started by a test, stopped (and its processes killed) whatever happens."""
    started: list[Up] = []
    yield started
    for up in started:
        left = up.descendants() if up.process.poll() is None else []
        up.stop()
        for process in left:
            if process.is_running():
                process.kill()


def health(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
        return json.loads(response.read())


def command_lines(processes: list[psutil.Process]) -> list[str]:
    lines = []
    for process in processes:
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return lines


async def test_up_runs_the_discord_bot_which_records_a_reaction_and_stops_with_the_rest(
        aiohttp_server, engine, hub_config, redis, up_env, tmp_path, running) -> None:
    made = people(engine, hub_config)
    identified: list[dict[str, Any]] = []
    server = await aiohttp_server(fake_gateway(identified, ["discord-reaction-add.json"]))
    up = Up(tmp_path, {**up_env, **gateway_env(server)})
    running.append(up)
    url = await up.until(up.url, "URL")
    assert "the discord bot" in "".join(up.out)

    def flattr() -> Any:
        with engine.connect() as conn:
            return conn.execute(select(flattrs)).first()

    recorded = await up.until(flattr, "flattr")
    assert (recorded.giver_id, recorded.retracted_at) == (made["pjotr"], None)
    stream = (await up.until(
        lambda: (s := health(url)["streams"]["discord"])["last_event_at"] and s,
        "stream status"))
    assert stream["connected"] is True and stream["lag_seconds"] >= 0
    [identify] = identified
    assert identify["token"] == TOKEN

    children = up.descendants()
    bots = [line for line in command_lines(children) if "discord-bot" in line]
    assert len(bots) == 1 and "worker" in " ".join(command_lines(children))
    up.stop()
    assert up.process.returncode == 0, "".join(up.err)
    assert "Flattr Hub stopped." in "".join(up.out)
    assert "Traceback" not in "".join(up.err)
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    assert redis.hget("flattr:stream:discord", "connected") == b"0"  # the bot closed cleanly


async def test_a_bot_that_keeps_failing_is_restarted_with_backoff_then_given_up(
        aiohttp_server, up_env, tmp_path, running) -> None:
    logins: list[str] = []
    gateway = fake_gateway([], token="another-token")  # refuses the configured token: 401

    @gateway.on_response_prepare.append
    async def count(request: Any, _response: Any) -> None:
        if request.path == "/users/@me":
            logins.append(request.headers.get("Authorization", ""))

    server = await aiohttp_server(gateway)
    up = Up(tmp_path, {**up_env, **gateway_env(server), "FLATTR_STREAMS__RESTART_MS": "50",
                       "FLATTR_STREAMS__MAX_RESTARTS": "2"})
    running.append(up)
    url = await up.until(up.url, "URL")

    def gave_up() -> list[str]:
        return [line for line in up.err if "gave up" in line]

    [line] = await up.until(gave_up, "give-up line")
    assert line == ("discord bot gave up after 2 restarts: Discord refused the bot token "
                    "(connectors.discord.bot_token)\n")
    assert len(logins) == 3 and TOKEN not in line  # the first run and two restarts
    waits = [json.loads(entry)["wait_seconds"] for entry in up.err
             if '"stream_restart"' in entry]
    assert waits == [0.05, 0.1]

    report = health(url)  # the hub, worker and scheduler keep running
    assert report["streams"]["discord"]["connected"] is False
    assert report["status"] == "degraded" and report["queue"] == "ok"
    children = up.descendants()
    assert not [line for line in command_lines(children) if "discord-bot" in line]
    assert any("worker" in line for line in command_lines(children))
    up.stop()
    assert up.process.returncode == 0, "".join(up.err)
    assert len(gave_up()) == 1
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []


async def test_the_bot_runs_on_its_own_and_a_refused_token_is_one_line(
        aiohttp_server, up_env, tmp_path) -> None:
    server = await aiohttp_server(fake_gateway([], token="another-token"))
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "flattr_hub.cli", "discord-bot"], cwd=tmp_path,
        env={**up_env, **gateway_env(server)}, capture_output=True, text=True,
        timeout=WAIT_SECONDS)
    assert done.returncode == 2
    assert done.stderr == ("flattr-hub: error: Discord refused the bot token "
                           "(connectors.discord.bot_token)\n")


def test_a_stream_listener_is_one_descriptor_entry(config, monkeypatch) -> None:
    assert configured_streams(config) == []
    config = with_overrides(config, {"connectors.discord.bot_token": TOKEN})
    assert configured_streams(config) == [
        StreamListener("discord", "discord bot", ("discord-bot",))]
    for platform in registry.PLATFORMS:
        if platform.stream is not None:
            assert platform.stream.command[0] in COMMANDS, platform.name
    config = with_overrides(config, {"connectors.bluesky": {"enabled": True}})
    assert [(s.name, s.label) for s in configured_streams(config)] == [
        ("discord", "discord bot"), ("bluesky", "bluesky stream")]


async def test_only_quick_failures_count_towards_giving_up(config) -> None:
    """A run that lasted `stable_seconds` starts the count again: with 0 every run did, so a
    listener that keeps stopping is restarted for ever; with 60 it is given up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    listener = StreamListener("nothing", "nothing listener", ("no-such-command",))

    async def supervise(stable_seconds: int, runs_wanted: int) -> tuple[int, list[str]]:
        quick = with_overrides(config, {"streams": dict(
            restart_ms=10, max_restarts=1, stable_seconds=stable_seconds)})
        said: list[str] = []
        supervisor = StreamSupervisor([listener], quick, [], env, said.append)
        stop = asyncio.Event()
        supervisor.start(stop)
        seen: list[Any] = []
        for _ in range(WAIT_SECONDS * 10):
            run = supervisor.runs.get("nothing")
            if run is not None and (not seen or seen[-1] is not run):
                seen.append(run)
            if said or len(seen) >= runs_wanted:
                break
            await asyncio.sleep(0.1)
        stop.set()
        supervisor.stop()
        return len(seen), said

    runs, said = await supervise(0, runs_wanted=3)
    assert (runs, said) == (3, [])
    runs, [line] = await supervise(60, runs_wanted=10)
    assert runs == 2
    assert line.startswith("nothing listener gave up after 1 restart: ")
    assert "invalid choice: 'no-such-command'" in line
