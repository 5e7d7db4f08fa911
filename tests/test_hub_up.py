"""`flattr-hub up --demo` end to end, as a newcomer runs it: embedded SQLite and Redis in a
fresh folder, the URL printed, signed webhooks answered, flattrs in the statement, and a clean
stop on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.cookiejar import CookieJar

from hub.simulate import github_star
from tests.hub_helpers import GITHUB_SECRET


def cli(*args: str, cwd, env) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flattr_hub.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_up_demo_answers_webhooks_records_flattrs_and_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    env.update(FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET=GITHUB_SECRET, PYTHONUNBUFFERED="1")
    up = subprocess.Popen([sys.executable, "-m", "flattr_hub.cli", "up", "--demo", "--port", "0"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            assert line, f"up exited: {up.stderr.read()}"
            lines.append(line)
            if url is None and (found := re.search(r"up at (http://\S+) ", line)):
                url = found.group(1)
                # The demo's users exist before the hub accepts a webhook (this one is sent
                # at once and must count for them), on a repository the demo never stars, so
                # that none of its random unstars can take this star back.
                assert any("demo: users" in earlier for earlier in lines[:-1]), lines
                body, headers = github_star(GITHUB_SECRET, sender=101, repo=10499, owner=104)
                request = urllib.request.Request(f"{url}/webhooks/github", data=body,
                                                 headers=headers)
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status == 202
            found = re.search(r"(\d+) flattrs recorded", line)
            if found and int(found.group(1)) > 0:
                assert "Operations" in dashboard_of_ana(url, "".join(lines))
                break
        else:
            raise AssertionError("no flattrs were reported: " + "".join(lines))
    finally:
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert "Traceback" not in err + out
    assert "Flattr Hub stopped." in out
    assert (tmp_path / "var" / "flattr-hub.sqlite3").exists()
    month = datetime.now(UTC).strftime("%Y-%m")
    statement = cli("statement", "ana", month, cwd=tmp_path, env=env)
    assert statement.returncode == 0, statement.stderr
    assert "github:10499" in statement.stdout
    assert cli("ledger", "verify", cwd=tmp_path, env=env).returncode == 0


def dashboard_of_ana(url: str, output: str) -> str:
    """Log in to the web pages as the demo's ana with the password `up --demo` printed."""
    password = re.search(r"with the password (\S+)", output).group(1)
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(f"{url}/login", timeout=10) as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "name": "ana", "password": password})
    with browser.open(f"{url}/login", data=form.encode(), timeout=10) as page:
        assert page.url == f"{url}/dashboard"
        return page.read().decode()
