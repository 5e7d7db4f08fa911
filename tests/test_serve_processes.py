"""`flattr-hub serve --processes 2`: two hub processes share one port (SO_REUSEPORT), both
answer webhooks and store them, and SIGTERM to the first stops both, answering what is in
flight (requests received in full; aiohttp drops a body still arriving when it stops)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
from sqlalchemy import func, select

from hub.simulate import github_star
from pipeline.inbox import inbox
from tests.hub_helpers import GITHUB_SECRET

pytest_plugins = ["tests.hub_fixtures"]


def post(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own (a new connection may go to either process)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def test_two_serve_processes_share_the_port_and_stop_together(tmp_path, engine, db_url,
                                                              redis_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    env.update(FLATTR_DATABASE_URL=db_url, FLATTR_REDIS_URL=redis_url,
               FLATTR_DATA_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1",
               FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET=GITHUB_SECRET,
               FLATTR_HUB__INBOX_WAIT_MS="1500")
    hub = subprocess.Popen([sys.executable, "-m", "flattr_hub.cli", "serve", "--port", "0",
                            "--processes", "2"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    group = psutil.Process(hub.pid)
    try:
        line = hub.stdout.readline()
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+) with 2 processes", line)
        assert found, line + hub.stderr.read()
        port = int(found.group(1))
        pids = {child.pid for child in group.children()} | {hub.pid}
        assert len(pids) == 2

        answered_by: set[int] = set()
        for _ in range(200):
            _, _, health = post(port, "GET", "/healthz")
            answered_by.add(json.loads(health)["process"])
            if answered_by == pids:
                break
        assert answered_by == pids

        # Each on a connection of its own, at once: both processes take some (all but
        # certainly) and store them, each in its own group commit.
        stars = [github_star(GITHUB_SECRET, sender=n, repo=9000 + n, owner=77)
                 for n in range(20)]
        with ThreadPoolExecutor(len(stars)) as pool:
            statuses = list(pool.map(lambda star: post(port, "POST", "/webhooks/github",
                                                       *star)[0], stars))
        assert statuses == [202] * len(stars)
        stored = len(stars)

        # A request in flight when the group is told to stop is still answered: each waits
        # FLATTR_HUB__INBOX_WAIT_MS for its group commit, and SIGTERM comes meanwhile.
        late: list[int] = []
        body, headers = github_star(GITHUB_SECRET, sender=1, repo=1, owner=77)
        sender = threading.Thread(target=lambda: late.append(
            post(port, "POST", "/webhooks/github", body, headers)[0]))
        sender.start()
        time.sleep(0.5)
        os.kill(hub.pid, signal.SIGTERM)
        sender.join(timeout=60)
        assert late == [202]
        stored += 1

        out, err = hub.communicate(timeout=60)
        assert hub.returncode == 0, err
        assert "Traceback" not in out + err
        assert not [pid for pid in pids if psutil.pid_exists(pid)
                    and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        with engine.connect() as conn_db:
            assert conn_db.execute(select(func.count()).select_from(inbox)).scalar_one() \
                == stored
    finally:
        for process in [group, *group.children()] if hub.poll() is None else []:
            process.kill()
        hub.wait(timeout=30)
