"""Instructions per webhook (not a test): the hub and the bare aiohttp handler of
`bench/ingest.py` (a), each run under valgrind's callgrind while `wrk -t1 -c32` sends signed
GitHub stars, counted only while wrk runs. The ratio bare ÷ hub is the intake ratio of (a) on a
machine where an instruction costs the same in both; unlike requests per second it does not
move with the load other jobs put on a shared machine (runs agree within about 2 %), so it
shows what a change to the request path is worth. Real time also pays for cache misses, which
the hub, with more code, two threads and a database, has more of: on this machine the time
ratio has been 0.75 to 0.85 of the instruction ratio.

valgrind and wrk are installed with apt-get when missing and possible; otherwise it says so and
stops. Everything runs on 127.0.0.1 with a scratch SQLite database and Redis server, as in
`bench/ingest.py`. Run: `python bench/instructions.py [--seconds 40]`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ingest import ROOT, Bench, free_port, have_wrk, wait_port, write_pool, wrk


def have_valgrind() -> bool:
    if not shutil.which("valgrind"):
        subprocess.run(["apt-get", "install", "-y", "valgrind"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    return shutil.which("valgrind") is not None


def instructions(bench: Bench, server: list[str], pool: Path, seconds: float, name: str
                 ) -> tuple[int, int]:
    """(instructions executed while wrk ran, requests answered) of `server` (its command,
    before the port) under callgrind."""
    port = free_port()
    out = bench.tmp / name
    out.mkdir()
    log = open(out / "server.log", "ab")  # noqa: SIM115
    child = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
         f"--callgrind-out-file={out}/callgrind.%p", *server, str(port)],
        cwd=ROOT, env=bench.env, stdout=log, stderr=log, start_new_session=True)
    bench.children.append(child)
    wait_port(port, 300)
    # What the first requests do once (imports and caches filled on first use) is not counted.
    wrk(port, pool, 5, 32, timeout=60)
    for option in ("--instr=on", None, "--dump", "--instr=off"):
        if option is None:
            run = wrk(port, pool, seconds, 32, timeout=60)  # callgrind: ~50 times slower
        else:
            subprocess.run(["callgrind_control", option, str(child.pid)], check=True,
                           capture_output=True)
    bench.stop(child)
    if run.non_2xx or run.errors:
        raise SystemExit(f"{name}: {run.non_2xx} answers not 2xx, {run.errors} socket errors")
    executed = sum(total_of(path) for path in out.glob("callgrind.*"))
    return executed, run.requests


def total_of(path: Path) -> int:
    """The instruction count a callgrind output file holds (its `totals:` line; the file
    written at exit, after counting was turned off, can hold a meaningless `summary:`)."""
    for line in path.open():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40,
                        help="wrk time per server under callgrind (40)")
    args = parser.parse_args()
    if not (have_wrk() and have_valgrind()):
        raise SystemExit("bench/instructions.py needs wrk and valgrind (apt-get install wrk "
                         "valgrind)")
    with tempfile.TemporaryDirectory(prefix="flattr-bench-") as tmp:
        bench = Bench(argparse.Namespace(database_url=""), Path(tmp))
        try:
            bench.fresh_database()
            pool = bench.tmp / "pool.tsv"
            write_pool(pool, 20000)
            figures = {}
            for name, server in (
                    ("bare", [sys.executable, str(ROOT / "bench" / "ingest.py"), "--bare"]),
                    ("hub", [sys.executable, "-m", "flattr_hub.cli", "serve", "--port"])):
                executed, requests = instructions(bench, server, pool, args.seconds, name)
                figures[name] = executed / requests
                print(f"    {name:5s} {requests:7.0f} requests answered under callgrind, "
                      f"{figures[name] / 1000:6.1f} k instructions per request")
            print(f"    ratio bare / hub in instructions: {figures['bare'] / figures['hub']:.3f}")
        finally:
            bench.close()


if __name__ == "__main__":
    main()
