"""Shared fixtures: a real database (SQLite file by default, PostgreSQL too when
FLATTR_TEST_DATABASE_URL is set) and the default settings. A test changes its settings with
`@pytest.mark.settings({"hub.port": 0, ...})` (applied before any fixture uses them) or
`base.config.with_overrides`."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, text

from base.config import Settings, with_overrides
from base.db import upgrade
from connectors.registry import default_config
from ledger.db import make_engine

PG_URL = os.environ.get("FLATTR_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
_migrated: set[str] = set()


def xdist_worker() -> int | None:
    """The number of this pytest-xdist worker (gw0 is 0), or None in a run without workers."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name.removeprefix("gw")) if name else None


def worker_database(url: str) -> str:
    """`url` itself in a serial run; in an xdist worker, a database of its own beside it
    (`test_gw1` beside `test`), created on first use, so workers never truncate each other's
    tables."""
    number = xdist_worker()
    if number is None:
        return url
    base = make_url(url)
    own = f"{base.database}_gw{number}"
    server = make_engine(base.set(database="postgres").render_as_string(hide_password=False))
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                        {"n": own}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{own}"'))
    server.dispose()
    return base.set(database=own).render_as_string(hide_password=False)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line (not one per test) saying why the browser tests were skipped and what to do.
    Counted from the reports, which reach this process from pytest-xdist's workers too (the
    controller collects no tests, so it never sees the skip markers themselves)."""
    from tests.browser_helpers import NO_CHROMIUM

    skipped = sum(1 for report in terminalreporter.stats.get("skipped", [])
                  if isinstance(report.longrepr, tuple) and NO_CHROMIUM in report.longrepr[2])
    if skipped:
        terminalreporter.write_line(f"{skipped} browser tests skipped: {NO_CHROMIUM}")


@pytest.fixture
def config(request: pytest.FixtureRequest, tmp_path: Any) -> Settings:
    marker = request.node.get_closest_marker("settings")
    return with_overrides(default_config(), {
        "data_dir": str(tmp_path / "var"), "settlement.batch_givers": 3,
        **(marker.args[0] if marker else {})})


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database migrated once per session (the migrations take 0.4 s, a copy 5 ms)."""
    path = tmp_path_factory.mktemp("template") / "ledger.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL test database of this process (see `worker_database`)."""
    return worker_database(PG_URL)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A migrated, empty database: a copy of the migrated SQLite template, or the PostgreSQL
    test database emptied."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite3"
        template = request.getfixturevalue("sqlite_template")
        # the backup API copies what the template's write-ahead log still holds, too
        with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as copy:
            source.backup(copy)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    if url not in _migrated:
        # The test database starts each session empty, so the schema is exactly the
        # migrations' even when the database was left behind by an older checkout.
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(url)
        _migrated.add(url)
    with engine.begin() as conn:
        names = ", ".join(conn.execute(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")).scalars())
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO ledger_clock (id, last_closed_month) VALUES (1, NULL)"))
    engine.dispose()
    yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
