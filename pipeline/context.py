"""The configuration, database engine and Redis connection that jobs use in this process.

`flattr-hub worker` installs them at start; a process that runs jobs without installing them
(another RQ worker) builds them from `load_config()` on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis import Redis
from sqlalchemy import Engine

_current: Context | None = None


@dataclass(frozen=True)
class Context:
    config: Mapping[str, Any]
    engine: Engine
    redis: Redis


def install(context: Context | None) -> None:
    global _current
    _current = context


def current() -> Context:
    global _current
    if _current is None:
        from base.config import database_url, load_config
        from base.redis_conn import connect
        from ledger.db import make_engine

        config = load_config()
        _current = Context(config, make_engine(database_url(config)), connect(config))
    return _current
