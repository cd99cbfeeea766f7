"""``manage.py serve``: the production ASGI server (uvicorn with uvloop and httptools)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the gateway's ASGI server (uvicorn, uvloop, httptools)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="Worker processes.")
        parser.add_argument(
            "--access-log",
            action="store_true",
            help="Log every request (off by default: it costs on the hot path).",
        )
        # Server limits (README "Security"): on by default, 0 turns one off.
        parser.add_argument(
            "--max-header-bytes",
            type=int,
            default=settings.GATEWAY_MAX_HEADER_BYTES,
            help="Largest request head (request line and headers) in bytes; over it: 431.",
        )
        parser.add_argument(
            "--header-timeout",
            type=float,
            default=settings.GATEWAY_HEADER_TIMEOUT,
            help="Seconds a client may take to send a request's headers (slow loris).",
        )
        parser.add_argument(
            "--body-timeout",
            type=float,
            default=settings.GATEWAY_BODY_TIMEOUT,
            help="Seconds a client may take to send a request's body once its headers are in.",
        )
        parser.add_argument(
            "--keep-alive-timeout",
            type=int,
            default=settings.GATEWAY_KEEPALIVE_TIMEOUT,
            help="Seconds an idle connection stays open between requests.",
        )
        parser.add_argument(
            "--limit-concurrency",
            type=int,
            default=settings.GATEWAY_LIMIT_CONCURRENCY,
            help="Connections plus requests in flight per worker before new requests get 503.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import uvicorn

        from gateway.proxy.server import ServerLimits, configure

        for name in ("max_header_bytes", "header_timeout", "body_timeout", "keep_alive_timeout"):
            if options[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must be 0 or more")
        # Workers are separate processes: configure() also passes the limits to them.
        configure(
            ServerLimits(
                max_header_bytes=options["max_header_bytes"],
                header_timeout=options["header_timeout"],
                body_timeout=options["body_timeout"],
            )
        )
        workers: int = options["workers"]
        if workers > 1:
            self._prometheus_multiprocess()
        self.stdout.write(
            f"Serving the gateway on http://{options['host']}:{options['port']} "
            f"with {workers} worker(s)"
        )
        uvicorn.run(
            "gateway.asgi:application",
            host=options["host"],
            port=options["port"],
            workers=workers if workers > 1 else None,
            loop="uvloop",
            http="gateway.proxy.server:LimitedHttpToolsProtocol",
            # Only used if the h11 protocol is chosen; it answers 400 past this size.
            h11_max_incomplete_event_size=options["max_header_bytes"] or None,
            lifespan="on",
            access_log=options["access_log"],
            log_level=settings.LOG_LEVEL.lower(),
            # Seconds a connection may idle between requests: longer than most clients' pools.
            timeout_keep_alive=options["keep_alive_timeout"],
            limit_concurrency=options["limit_concurrency"] or None,
            timeout_graceful_shutdown=30,
            proxy_headers=True,
        )

    def _prometheus_multiprocess(self) -> None:
        """Several workers: prometheus-client must write each process's values to files that
        any worker's ``/metrics`` aggregates. The variable must be set before the workers
        import prometheus-client; they inherit it. Stale files of a previous run are removed."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.PROMETHEUS_MULTIPROC_DIR
        path = Path(directory)
        if path.is_dir():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        self.stdout.write(f"Prometheus multiprocess mode: {path}")
