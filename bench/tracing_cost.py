"""What tracing costs on the request path: chat completions through the ASGI app in process.

    python bench/tracing_cost.py [--mode off|on] [-n 2000] [--rounds 7] [--root DIR]

Starts ``bench/upstream.py`` on a loopback port (its own process, so its CPU is not counted),
configures one ``openai`` instance, a mapping and a virtual key in a throwaway SQLite database,
and calls the gateway's ASGI app directly (no HTTP server, no test client: the least noise
around the request path). Per request it reports the process CPU time (all threads: with
tracing on, the batch exporter's thread counts) and the wall time, minimum over ``--rounds``
rounds of ``-n`` requests (the machine is shared: the minimum is the least disturbed round).

``--mode on`` exports to a sink that drops the spans (the SDK's batch processor still builds,
queues and hands them over). ``--root`` runs another checkout's code (e.g. the main branch, to
compare "off" before and after the change); ``--mode on`` needs this branch.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BODY = b'{"model": "bench-chat", "messages": [{"role": "user", "content": "Hi"}]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(tmp: str, upstream: str) -> str:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["GATEWAY_STATE_DIR"] = tmp
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # DEBUG off as in production; it then wants its secrets (throwaway ones for this run).
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
    fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", fernet)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from gateway.keys.services import virtual_key_create
    from mappings.models import ModelProviderMapping
    from providers.models import Provider, ProviderKeyCredential

    provider = Provider.objects.create(
        name="bench-up", provider_type="openai", base_url=upstream + "/v1", max_retries=0
    )
    ProviderKeyCredential.objects.create(
        provider=provider, key_name="k", api_key="sk-bench-upstream", is_primary=True
    )
    ModelProviderMapping.objects.create(
        model_alias="bench-chat", provider=provider, provider_model_id="gpt-4o-mini"
    )
    _, plaintext = virtual_key_create(name="bench", allowed_models=None)
    return plaintext


async def run(key: str, mode: str, n: int, rounds: int) -> list[tuple[float, float]]:
    from gateway.proxy.app import GatewayApp
    from gateway.routing.holder import route_tables
    from gateway.routing.table import route_table_build
    from gateway.usage.events import InMemoryUsageQueue, set_usage_queue
    from providers import db_thread, http

    if mode == "on":
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        from gateway.proxy import tracing

        class Sink(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        tracing.tracing_setup(Sink(), env={})

    table = await db_thread.run_db(route_table_build)
    route_tables.install(table)
    route_tables.auto_refresh = False
    queue = InMemoryUsageQueue()
    set_usage_queue(queue)

    async def not_django(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(scope["path"])

    app = GatewayApp(not_django)
    headers = [
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def one() -> None:
        await app(dict(scope), receive, send)

    for _ in range(300):  # warm: connections, caches
        await one()
    results = []
    for _ in range(rounds):
        statuses.clear()
        queue.drain()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            await one()
        results.append(
            ((time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6)
        )
        assert statuses == [200] * n, statuses[:5]
    await http.close_client()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["off", "on"], default="off")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--root", default=str(HERE.parent), help="checkout whose code to run")
    a = parser.parse_args()
    sys.path.insert(0, str(Path(a.root).resolve()))
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(HERE / "upstream.py"), "--port", str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            key = setup(tmp, f"http://127.0.0.1:{port}")
            import uvloop

            results = uvloop.run(run(key, a.mode, a.n, a.rounds))
    finally:
        upstream.terminate()
        upstream.wait()
    import gateway

    code = Path(gateway.__file__).resolve().parent.parent
    cpu = min(r[0] for r in results)
    wall = min(r[1] for r in results)
    print(
        f"tracing {a.mode} (code in {code}): {cpu:7.1f} us CPU, "
        f"{wall:7.1f} us wall per request (min of {a.rounds} x {a.n})"
    )


if __name__ == "__main__":
    main()
