"""Instructions per proxied request, gateway against floor: the bench's one figure that does
not move with the machine's load.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N python bench/instructions.py
    python bench/instructions.py            # embedded mode (SQLite, no Redis)

Why: wall-clock and CPU-time figures here moved by +-15% between back-to-back runs of the
same code (``make bench`` interleaves and takes medians for that reason), so a 5% change is
invisible in them. valgrind's callgrind counts the instructions a process executes, which
does not depend on what else the machine is doing.

How: the bench's nginx upstream and the mode's throwaway database, Redis database and
configuration (the functions of ``bench/run.py``); then, under callgrind and side by side,
one process drives the gateway's ASGI application and another the floor's (``bench/floor.py``;
in production mode a third, the floor with one Redis round trip per request, ``--redis``)
in process: no server, so uvicorn's share (the same for both) is left out. Each sends
``--warmup`` chat completions at concurrency 16, has its counters zeroed, sends ``--requests``
more, waits for the usage flusher, and dumps. The gateway's run includes its background work
(usage flusher, routing releases, route-table checks), all on the measured loop or its
database thread. Prints instructions per request for each and the ratio.

Needs valgrind (Debian package ``valgrind``); about 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BODY = b'{"model": "bench-chat", "messages": [{"role": "user", "content": "Hi"}]}'
KEY = b"Bearer sk-gw-bench-00000000000000000000000000000000"
CONCURRENCY = 16
HEADERS = [
    (b"host", b"127.0.0.1"),
    (b"content-type", b"application/json"),
    (b"authorization", KEY),
    (b"content-length", str(len(BODY)).encode()),
]

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


# --- the driven process (under callgrind) ----------------------------------------------------


async def _one(app: App) -> None:
    # What both applications read of a scope; the rest of an ASGI scope (client, server,
    # scheme, raw path) they do not look at.
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}
    scope["query_string"], scope["headers"] = b"", HEADERS
    started: list[int] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.append(message["status"])

    await app(scope, receive, send)
    if started != [200]:
        raise SystemExit(f"answered {started}, not 200: is the bench configuration loaded?")


async def _load(app: App, n: int) -> None:
    numbers = iter(range(n))

    async def client() -> None:
        for _ in numbers:
            await _one(app)

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


def _callgrind(command: str) -> None:
    # The driven process is valgrind's child: callgrind_control finds it by its own pid.
    subprocess.run(["callgrind_control", command, str(os.getpid())], capture_output=True)


async def _drive(app: App, warmup: int, requests: int) -> None:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    await _load(app, warmup)
    await asyncio.sleep(0.5)  # the warm-up's usage flushed and releases sent
    _callgrind("-z")
    await _load(app, requests)
    await asyncio.sleep(0.5)  # the measured requests' usage and releases are part of them
    _callgrind("-d")
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await lifespan


def drive(target: str, warmup: int, requests: int) -> None:
    """Run in the process under callgrind: drive ``target`` ("gateway", "floor" or "state",
    the floor with one Redis round trip per request)."""
    import uvloop

    if target == "state":
        os.environ["FLOOR_REDIS_URL"] = os.environ["REDIS_URL"]  # read when floor is imported
    gateway = (HERE.parent, "gateway.asgi", "application")
    where, module, name = gateway if target == "gateway" else (HERE, "floor", "app")
    sys.path.insert(0, str(where))
    app: App = getattr(importlib.import_module(module), name)
    uvloop.run(_drive(app, warmup, requests))


# --- the measuring process -------------------------------------------------------------------


def _measured(out_dir: Path, target: str) -> int:
    """Instructions of the dump between the zeroing and the end of the measured requests."""
    dumps = sorted(out_dir.glob(f"{target}.*.1"))
    if not dumps:
        raise SystemExit(f"no callgrind dump for {target} in {out_dir}")
    match = re.search(r"^summary:\s+(\d+)", dumps[0].read_text(errors="replace"), re.M)
    if match is None:
        raise SystemExit(f"no summary line in {dumps[0]}")
    return int(match.group(1))


def measure(args: argparse.Namespace) -> dict[str, float]:
    import run  # the bench's functions: upstream, throwaway database and Redis, configuration

    mode = "production" if run._production_ready() else "embedded"
    # Production mode also counts the floor of shared state (bench/floor.py --redis).
    targets = ("gateway", "floor", "state") if mode == "production" else ("gateway", "floor")
    with tempfile.TemporaryDirectory(prefix="gw-instr-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        upstream, port, _ = run.start_fixed_upstream(tmp)
        stack.callback(run.stop, upstream)
        env = run.prepare_mode(stack, mode, tmp, run.bench_config(port, port, 0))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prometheus")
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        env["FLOOR_UPSTREAM"] = f"http://127.0.0.1:{port}/v1"
        started = time.monotonic()
        procs = {
            target: subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={tmp / target}.%p",
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--drive",
                    target,
                    "--warmup",
                    str(args.warmup),
                    "--requests",
                    str(args.requests),
                ],
                env=env,
                cwd=HERE.parent,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for target in targets
        }
        for target, proc in procs.items():
            _, err = proc.communicate()
            if proc.returncode != 0:
                sys.stderr.write(err.decode(errors="replace")[-3000:])
                raise SystemExit(f"the {target} run failed ({proc.returncode})")
        counts = {t: _measured(tmp, t) / args.requests for t in procs}
    print(
        f"{mode} mode, {args.requests} requests after {args.warmup} (concurrency "
        f"{CONCURRENCY}, in process, no server), {time.monotonic() - started:.0f} s:\n"
        f"  gateway {counts['gateway'] / 1e6:.3f} M instructions per request\n"
        f"  floor   {counts['floor'] / 1e6:.3f} M instructions per request\n"
        + (
            f"  floor + Redis round trip {counts['state'] / 1e6:.3f} M "
            f"({counts['state'] / counts['floor']:.2f}x the floor's)\n"
            if "state" in counts
            else ""
        )
        + f"  ratio   {counts['gateway'] / counts['floor']:.2f}x"
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--drive", choices=("gateway", "floor", "state"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.drive, args.warmup, args.requests)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind (Debian)")
    sys.path.insert(0, str(HERE))
    measure(args)


if __name__ == "__main__":
    main()
