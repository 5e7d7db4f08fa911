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
from sqlalchemy import Engine, text

from base.config import Settings, with_overrides
from base.db import upgrade
from connectors.registry import default_config
from ledger.db import make_engine

PG_URL = os.environ.get("FLATTR_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
_migrated: set[str] = set()


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
    engine = make_engine(PG_URL)
    if PG_URL not in _migrated:
        # The test database starts each session empty, so the schema is exactly the
        # migrations' even when the database was left behind by an older checkout.
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(PG_URL)
        _migrated.add(PG_URL)
    with engine.begin() as conn:
        names = ", ".join(conn.execute(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")).scalars())
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO ledger_clock (id, last_closed_month) VALUES (1, NULL)"))
    engine.dispose()
    yield PG_URL


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
