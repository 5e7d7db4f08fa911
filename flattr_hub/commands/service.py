"""Service commands: `serve` (the webhook hub), `worker` (an RQ worker on every queue),
`scheduler` (the jobs of `workers.schedule.SCHEDULES`), and `up`, which runs all three on
embedded defaults (SQLite and an embedded Redis unless `redis.url` is set) until Ctrl-C;
`up --demo` adds demo users and a stream of signed GitHub star webhooks."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from base.config import Settings, database_url, with_overrides
from base.errors import UserError
from base.links import listened, require_base_url
from base.redis_conn import connect, release_embedded, socket_url
from connectors.streams import configured_streams
from flattr_hub.children import spawn
from flattr_hub.commands import add_command, port
from flattr_hub.server_group import ServerGroup, stop_with_parent
from flattr_hub.supervisor import StreamSupervisor
from hub import demo
from hub.app import create_app
from hub.server import bind, run, serve, url_of
from pipeline.context import Context
from pipeline.queues import QUEUES
from workers.schedule import SCHEDULES, run_scheduler
from workers.worker import run_worker, tune_collector

STOP_SECONDS = 20


def register(commands: Any) -> None:
    serve_cmd = add_command(commands, "serve", "run the webhook hub", _serve)
    _listen_options(serve_cmd)
    # How a group's first process starts the others (flattr_hub.server_group).
    serve_cmd.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    worker = add_command(commands, "worker", f"run a worker on the queues {', '.join(QUEUES)}",
                         _worker)
    worker.add_argument("--burst", action="store_true",
                        help="process what is queued and pending, then exit")
    add_command(commands, "scheduler", "enqueue on schedule "
                + ", ".join(schedule.what for schedule in SCHEDULES), _scheduler)
    up = add_command(commands, "up", "run the hub, a worker, the scheduler and the configured "
                     "stream connectors on embedded defaults until Ctrl-C", _up)
    _listen_options(up)
    up.add_argument("--demo", action="store_true",
                    help="also create demo users and send them signed GitHub star webhooks")


def _listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: hub.host)")
    parser.add_argument("--port", type=port, help="port to listen on (default: hub.port)")
    parser.add_argument("--processes", type=_processes, default=1, metavar="N",
                        help="hub processes sharing the port (SO_REUSEPORT), each with its own "
                             "group commit; one per core (default 1)")


def _processes(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 64")
    return int(value)


def _config_args(args: argparse.Namespace) -> list[str]:
    return ["--config", args.config] if getattr(args, "config", None) else []


def _context(app: Any) -> Context:
    return Context(app.config, app.engine, connect(app.config))


def _hub(context: Context) -> web.Application:
    try:
        return create_app(context.config, context.engine, context.redis)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _address(args: argparse.Namespace, config: Settings) -> tuple[str, int]:
    """Where to listen (a port out of range is the user's mistake). Links are built from
    hub.base_url, which must be set unless that is a loopback address."""
    host = args.host or config.hub.host
    try:
        require_base_url(config, host)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.port is not None:
        return host, args.port
    try:
        return host, port(str(config.hub.port))
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"hub.port: {exc}") from None


def _bind(args: argparse.Namespace, app: Any, reuse_port: bool) -> socket.socket:
    """The hub's listening socket; from then on the settings' links name the address it
    listens on (`base.links.listened`)."""
    host, port = _address(args, app.config)
    try:
        sock = bind(host, port, reuse_port=reuse_port)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    app.config = listened(app.config, url_of(sock))
    return sock


def _serve(args: argparse.Namespace, app: Any) -> int:
    sock = _bind(args, app, reuse_port=args.processes > 1 or args.reuse_port)
    web_app = _hub(_context(app))
    tune_collector()
    group = ServerGroup(args.processes, sock.getsockname()[0], _config_args(args), os.environ)
    watching: list[asyncio.Task[None]] = []

    async def started(url: str, stop: asyncio.Event) -> None:
        if args.reuse_port:
            watching.append(asyncio.get_running_loop().create_task(stop_with_parent(stop)))
        await group.start(url, stop)
        if not group.failed:
            print(f"Flattr Hub is listening on {url}{group.described()} (Ctrl-C to stop)",
                  flush=True)

    try:
        run(serve(web_app, sock, started))
    finally:
        group.stop()
    if group.failed:
        raise UserError(f"the {group.failed}; everything was stopped")
    return 0


def _worker(args: argparse.Namespace, app: Any) -> int:
    context = _context(app)
    tune_collector()
    run_worker(context, burst=args.burst)
    return 0


def _scheduler(_args: argparse.Namespace, app: Any) -> int:
    try:
        run_scheduler(_context(app))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return 0


def _up(args: argparse.Namespace, app: Any) -> int:
    if args.demo and not app.config.connectors["github"].webhook_secret:
        app.config = with_overrides(app.config, {
            "connectors.github.webhook_secret": secrets.token_urlsafe(32)})
    sock = _bind(args, app, reuse_port=args.processes > 1)
    config = app.config
    github = config.connectors["github"]
    context = _context(app)
    env = dict(os.environ, FLATTR_DATABASE_URL=database_url(config),
               FLATTR_HUB__BASE_URL=config.hub.base_url)
    if not config.redis.url:
        env["FLATTR_REDIS_URL"] = socket_url(context.redis)
    if args.demo:
        env["FLATTR_CONNECTORS__GITHUB__WEBHOOK_SECRET"] = github.webhook_secret
    web_app = _hub(context)
    if args.demo:
        _seed_demo(context)
    config_args = _config_args(args)
    group = ServerGroup(args.processes, sock.getsockname()[0], config_args, env)
    children: dict[str, subprocess.Popen[bytes]] = {}
    streams = StreamSupervisor(configured_streams(config), config, config_args, env,
                               lambda line: print(line, file=sys.stderr, flush=True))
    failed: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    async def started(url: str, stop: asyncio.Event) -> None:
        await group.start(url, stop)
        if group.failed:
            return
        for name in ("worker", "scheduler"):
            children[name] = spawn([sys.executable, "-m", "flattr_hub.cli", name, *config_args],
                                   env=env)
        streams.start(stop)
        print(f"Flattr Hub is up at {url} — webhooks at {url}/webhooks/<platform>, health at "
              f"{url}/healthz; a worker{streams.described()} and the scheduler are running. "
              f"Ctrl-C stops all.", flush=True)
        if group.extra:
            print(f"The hub runs{group.described()} sharing the port.", flush=True)
        tasks.append(asyncio.get_running_loop().create_task(_watch(children, stop, failed)))
        if args.demo:
            tasks.append(_start_demo(context, url, github.webhook_secret, stop))

    try:
        run(serve(web_app, sock, started))
    finally:
        group.stop()
        streams.terminate()
        _stop_children(children)
        streams.stop()
        context.redis.close()
        release_embedded()
    if group.failed:
        raise UserError(f"the {group.failed}; everything was stopped")
    if failed:
        raise UserError(f"the {failed[0]} stopped unexpectedly; everything was stopped")
    print("Flattr Hub stopped.", flush=True)
    return 0


async def _watch(children: Mapping[str, subprocess.Popen[bytes]], stop: asyncio.Event,
                 failed: list[str]) -> None:
    while not stop.is_set():
        for name, child in children.items():
            if child.poll() is not None:
                failed.append(name)
                stop.set()
                return
        await asyncio.sleep(0.5)


def _seed_demo(context: Context) -> None:
    """The demo's users, created before the hub listens: a webhook that arrives as soon as it
    is up finds their identities (before, it could be ingested before they existed)."""
    created = demo.seed(context.engine, context.config)
    names = ", ".join(name for name, *_ in demo.USERS)
    print(f"demo: users {names} have budgets, funds and GitHub identities"
          f"{' (created now)' if created else ''}", flush=True)


def _start_demo(context: Context, url: str, secret: str,
                stop: asyncio.Event) -> asyncio.Task[None]:
    print("demo: sending signed star webhooks", flush=True)
    print(f"demo: open {url}/login and log in as ana (an operator) or bo, cy, dee with the "
          f"password {demo.DEMO_PASSWORD}", flush=True)

    def count() -> int:
        return demo.flattr_count(context.engine)

    return asyncio.get_running_loop().create_task(
        demo.stream(url, secret, stop, lambda line: print(line, flush=True), count))


def _stop_children(children: Mapping[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child's process group (a warm stop: the worker finishes its job), then
    SIGKILL whatever is still running after STOP_SECONDS."""
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
