"""Settlement is resumable: a run interrupted anywhere (an exception at a fault point, or a
real SIGKILL of the `flattr-hub settle` process) and run again ends with exactly the ledger of
one clean run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime

import pytest
from sqlalchemy import select

from base.db import upgrade
from ledger.db import make_engine
from ledger.schema import settlement_runs
from ledger.settlement import settle
from ledger.verify import verify
from tests.ledger_helpers import build_month, dump_ledger

AFTER = datetime(2026, 7, 2)


class Crash(Exception):
    pass


def crash_at(point: str, nth: int):
    seen = {"count": 0}

    def fault(name: str) -> None:
        if name == point:
            seen["count"] += 1
            if seen["count"] == nth:
                raise Crash(f"{point} #{nth}")
    return fault


def clean_run(tmp_path, config, givers):
    url = f"sqlite:///{tmp_path / 'reference.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    build_month(engine, config, givers=givers)
    settle(engine, "2026-06", config.money, now=AFTER)
    dump = dump_ledger(engine)
    engine.dispose()
    return dump


@pytest.fixture
def reference(tmp_path, config):
    return clean_run(tmp_path, config, 30)


@pytest.mark.parametrize(("point", "nth"), [
    ("started", 1), ("chunk_written", 1), ("chunk_written", 4), ("chunk_committed", 2),
    ("chunk_committed", 11),
])
def test_crash_and_rerun_equals_clean_run(engine, config, reference, point, nth):
    build_month(engine, config, givers=30)
    with pytest.raises(Crash):
        settle(engine, "2026-06", config.money, now=AFTER, fault=crash_at(point, nth))
    with engine.connect() as conn:
        assert any("unfinished" in p for p in verify(conn))
    result = settle(engine, "2026-06", config.money, now=AFTER)
    assert result.state == "done"
    assert dump_ledger(engine) == reference
    with engine.connect() as conn:
        assert verify(conn) == []


def test_settling_twice_changes_nothing(engine, config, reference):
    build_month(engine, config, givers=30)
    first = settle(engine, "2026-06", config.money, now=AFTER)
    again = settle(engine, "2026-06", config.money, now=AFTER)
    assert again.already_done and not first.already_done
    assert dump_ledger(engine) == reference


def test_sigkill_of_settle_process_then_rerun(db_url, engine, config, tmp_path):
    reference = clean_run(tmp_path, config, 200)
    build_month(engine, config, givers=200)
    env = {**os.environ, "FLATTR_DATABASE_URL": db_url, "FLATTR_SETTLEMENT__BATCH_GIVERS": "1",
           "FLATTR_DATA_DIR": str(tmp_path / "var"), "FLATTR_CONFIG": os.devnull}
    command = [sys.executable, "-m", "flattr_hub.cli", "settle", "2026-06"]
    kills = 0
    for wait_for in (10, 60, 120):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                cursor = conn.execute(select(settlement_runs.c.next_giver_id)).scalar()
            if cursor is not None and cursor >= wait_for:
                proc.kill()
                kills += 1
                break
            time.sleep(0.005)
        proc.wait(timeout=30)
        assert proc.returncode in (0, -9), proc.stderr.read().decode()
    assert kills >= 1, "the settle process finished before it could be killed"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert dump_ledger(engine) == reference
    with engine.connect() as conn:
        assert verify(conn) == []
