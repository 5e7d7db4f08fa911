"""The configuration, database engine and Redis connection that jobs use in this process.

`flattr-hub worker` and `flattr-hub scheduler` install them at start. A process that runs jobs
without installing them (a plain `rq worker`) gets a clear error, not a configuration guessed
from its working directory.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from sqlalchemy import Engine

from base.config import Settings

_current: Context | None = None


@dataclass(frozen=True)
class Context:
    config: Settings
    engine: Engine
    redis: Redis


def install(context: Context | None) -> None:
    global _current
    _current = context


class NoContext(RuntimeError):
    """A job ran in a process that installed no context."""


def current() -> Context:
    if _current is None:
        raise NoContext("no job context in this process: run jobs with `flattr-hub worker`")
    return _current
