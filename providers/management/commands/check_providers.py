"""``manage.py check_providers [--provider NAME]``: probe instances now and print a table.

Runs the same service as the Celery task (records a HealthCheck, feeds the circuit breaker),
synchronously in this process. Colors come from Django's ``self.style``: none when the output
is not a terminal (or with ``--no-color``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from providers.circuit import CircuitState, circuit_info_all_sync
from providers.health import health_check_run
from providers.models import HealthStatus, Provider

COLUMNS = (("instance", 28), ("type", 18), ("status", 10), ("latency", 10), ("circuit", 10))


class Command(BaseCommand):
    help = "Probe provider instances now; print instance, type, status, latency and circuit."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--provider", metavar="NAME", help="Only this instance.")

    def handle(self, *args: Any, **options: Any) -> None:
        providers = Provider.objects.order_by("name")
        if options["provider"]:
            providers = providers.filter(name=options["provider"])
            if not providers.exists():
                raise CommandError(f"no provider instance named {options['provider']!r}")
        rows = list(providers)
        if not rows:
            self.stdout.write("no provider instances configured")
            return
        self.stdout.write(self._line([name for name, _ in COLUMNS]))
        circuits = circuit_info_all_sync([p.id for p in rows if not p.is_enabled])
        down = 0
        for provider in rows:
            result = health_check_run(provider_id=provider.id) if provider.is_enabled else None
            if result is None:
                state = circuits.get(provider.id)
                cells = [
                    provider.name,
                    provider.provider_type,
                    "disabled",
                    "-",
                    str(state.state) if state else "-",
                ]
                self.stdout.write(self._line(cells, {2: self.style.NOTICE}))
                continue
            outcome = result.outcome
            latency = f"{outcome.latency_ms:.0f} ms" if outcome.latency_ms is not None else "-"
            cells = [provider.name, provider.provider_type, outcome.status, latency]
            cells.append(str(result.circuit))
            styles = {2: self._status_style(outcome.status), 4: self._circuit_style(result.circuit)}
            self.stdout.write(self._line(cells, styles))
            if outcome.status == HealthStatus.DOWN:
                down += 1
                detail = outcome.error_category + (
                    f" (HTTP {outcome.http_status})" if outcome.http_status else ""
                )
                self.stdout.write(f"  {detail}: {outcome.error_message}")
        if down:
            self.stdout.write(self.style.ERROR(f"{down} instance(s) down"))

    def _line(self, cells: list[str], styles: dict[int, Callable[[str], str]] | None = None) -> str:
        out = []
        for i, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True)):
            text = cell if len(cell) <= width else cell[: width - 1] + "…"
            text = text.ljust(width)  # pad before coloring: escape codes have no width
            style = (styles or {}).get(i)
            out.append(style(text) if style else text)
        return " ".join(out).rstrip()

    def _status_style(self, status: str) -> Callable[[str], str]:
        styles: dict[str, Callable[[str], str]] = {
            HealthStatus.HEALTHY: self.style.SUCCESS,
            HealthStatus.DEGRADED: self.style.WARNING,
        }
        return styles.get(status, self.style.ERROR)

    def _circuit_style(self, state: CircuitState) -> Callable[[str], str]:
        return {
            CircuitState.CLOSED: self.style.SUCCESS,
            CircuitState.HALF_OPEN: self.style.WARNING,
        }.get(state, self.style.ERROR)
