"""``manage.py serve``: the production ASGI server (uvicorn with uvloop and httptools)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


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

    def handle(self, *args: Any, **options: Any) -> None:
        import uvicorn

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
            http="httptools",
            lifespan="on",
            access_log=options["access_log"],
            log_level=settings.LOG_LEVEL.lower(),
            # Seconds a connection may idle between requests: longer than most clients' pools.
            timeout_keep_alive=75,
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
