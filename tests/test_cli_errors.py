"""A person's mistake on the command line is one line on stderr and exit status 2, never a
traceback: ports out of range, a database nothing answers on, a config file that is not UTF-8
or not YAML (with line and column), a month that does not exist."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest


def flattr_hub(*args: str, cwd, **env: str) -> tuple[int, list[str]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLATTR_")}
    run = subprocess.run([sys.executable, "-m", "flattr_hub.cli", *args], cwd=cwd,
                         env={**environ, **env}, capture_output=True, text=True, timeout=60)
    return run.returncode, run.stderr.splitlines()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("args", [("up", "--port", "70000"), ("serve", "--port", "-1")])
def test_a_port_out_of_range_is_one_line(tmp_path, args):
    code, err = flattr_hub(*args, cwd=tmp_path)
    assert (code, len(err)) == (2, 1), err
    assert "out of range" in err[0]


def test_a_configured_port_out_of_range_is_one_line(tmp_path):
    code, err = flattr_hub("serve", cwd=tmp_path, FLATTR_HUB__PORT="70000")
    assert (code, err) == (2, ["flattr-hub: error: hub.port: port 70000 is out of range "
                               "(0 to 65535)"])


def test_a_database_nothing_answers_on_is_one_line_without_the_password(tmp_path):
    port = closed_port()
    code, err = flattr_hub("balance", "ana", cwd=tmp_path,
                           FLATTR_DATABASE_URL=f"postgresql://bob:s3cret-pw@127.0.0.1:{port}/x")
    assert (code, len(err)) == (2, 1), err
    assert f"127.0.0.1:{port}" in err[0] and "refused" in err[0]
    assert "s3cret-pw" not in err[0]


def test_a_config_file_that_is_not_utf8_is_one_line_with_line_and_column(tmp_path):
    (tmp_path / "config.yaml").write_bytes(b"hub:\n  host: \"caf\xe9\"\n")
    code, err = flattr_hub("balance", "ana", cwd=tmp_path)
    assert (code, len(err)) == (2, 1), err
    assert "not UTF-8" in err[0] and "line 2, column 13" in err[0]


def test_invalid_yaml_is_one_line_with_line_and_column(tmp_path):
    (tmp_path / "config.yaml").write_text("hub:\n  port: 8080\n   host: x\n")
    code, err = flattr_hub("balance", "ana", cwd=tmp_path)
    assert (code, len(err)) == (2, 1), err
    assert "not valid YAML at line 3, column 8" in err[0]


def test_a_month_that_does_not_exist_is_named(tmp_path):
    code, err = flattr_hub("settle", "2026-13", cwd=tmp_path)
    assert (code, len(err)) == (2, 1), err
    assert "month 13 does not exist" in err[0]
    code, err = flattr_hub("settle", "June", cwd=tmp_path)
    assert "must be written YYYY-MM" in err[0]
