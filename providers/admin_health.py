"""Health where admins work: the Provider admin's health columns, "Check now", "Probe selected",
and the read-only ``HealthCheck`` history admin.

The changelist stays one SQL query: the latest check's status and time are annotated with a
``Subquery``; circuit states come from the breaker's public API (one Redis round trip for the
page, no SQL). Probes run the same code as the Celery health task
(:func:`providers.health.health_check_run`), so a manual probe is recorded and feeds the circuit
breaker like a scheduled one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from providers.admin_base import ReadOnlyAdminMixin
from providers.circuit import CircuitInfo, circuit_info_all_sync
from providers.health import ProbeResult, health_check_run
from providers.models import HealthCheck, HealthStatus, Provider, ProviderKeyCredential
from providers.redaction import redact_for
from providers.snapshot import provider_snapshot_build

# Badge colours pass WCAG AA (4.5:1) with white text in both admin themes.
STATUS_COLOURS = {
    HealthStatus.HEALTHY: "#1e7b34",
    HealthStatus.DEGRADED: "#8a5a00",
    HealthStatus.DOWN: "#b02a37",
    "closed": "#1e7b34",
    "half_open": "#8a5a00",
    "open": "#b02a37",
}


def utc_text(value: datetime | None) -> str:
    """``2026-01-31 12:00:05 UTC``, or an em dash: admin pages label their times as UTC."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def badge(text: str, key: str) -> str:
    colour = STATUS_COLOURS.get(key, "#555")
    return format_html(
        '<span class="gw-badge" style="background:{};color:#fff;padding:1px 6px;'
        'border-radius:8px;white-space:nowrap">{}</span>',
        colour,
        text,
    )


def latest_check_annotations() -> dict[str, Subquery]:
    """Annotations with the latest check's status and time: one query for any number of rows."""
    latest = HealthCheck.objects.filter(provider=OuterRef("pk")).order_by("-checked_at", "-id")
    return {
        "_health_status": Subquery(latest.values("status")[:1]),
        "_health_checked_at": Subquery(latest.values("checked_at")[:1]),
    }


def probe_message(result: ProbeResult | None, provider: Provider) -> tuple[int, str]:
    """(message level, text) saying what a manual probe found."""
    if result is None:
        return messages.WARNING, f"“{provider.name}” is disabled: not probed."
    outcome = result.outcome
    text = f"“{result.name}”: {outcome.status}"
    if outcome.latency_ms is not None:
        text += f" in {outcome.latency_ms:.0f} ms"
    if outcome.http_status is not None:
        text += f" (HTTP {outcome.http_status})"
    text += f"; circuit {result.circuit}"
    if outcome.error_message:
        text += f"; {outcome.error_message}"
    level = {
        HealthStatus.HEALTHY: messages.SUCCESS,
        HealthStatus.DEGRADED: messages.WARNING,
    }.get(HealthStatus(outcome.status), messages.ERROR)
    return level, text


class HealthChangeList(ChangeList):
    """A changelist that reads the page's circuit states in one round trip after the query."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows = list(self.result_list)
        circuits = circuit_info_all_sync([p.pk for p in rows])
        for provider in rows:
            provider._circuit = circuits.get(provider.pk, CircuitInfo())


class ProviderHealthAdminMixin(admin.ModelAdmin):
    """The health columns, read-only fields, "Check now" view and "Probe selected" action."""

    health_readonly_fields = ("health_status", "circuit_state", "last_probe", "last_error")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return HealthChangeList

    def annotate_health(self, queryset: QuerySet[Provider]) -> QuerySet[Provider]:
        return queryset.annotate(**latest_check_annotations())

    # --- columns and fields ----------------------------------------------------------------

    def _circuit(self, obj: Provider) -> CircuitInfo:
        info = getattr(obj, "_circuit", None)
        if info is None:  # the change form: one instance, one lookup
            info = circuit_info_all_sync([obj.pk]).get(obj.pk, CircuitInfo())
            obj._circuit = info  # type: ignore[attr-defined]
        return info

    def _latest(self, obj: Provider) -> HealthCheck | None:
        if not hasattr(obj, "_latest_check"):
            obj._latest_check = (  # type: ignore[attr-defined]
                HealthCheck.objects.filter(provider=obj).order_by("-checked_at", "-id").first()
            )
        return obj._latest_check  # type: ignore[attr-defined]

    @admin.display(description="status", ordering="_health_status")
    def health_status(self, obj: Provider) -> str:
        if not obj.pk:
            return "—"
        status = getattr(obj, "_health_status", None)
        if status is None and not hasattr(obj, "_health_checked_at"):
            check = self._latest(obj)
            status = check.status if check else None
        if status is None:
            return "not probed yet"
        return badge(str(status), str(status))

    @admin.display(description="circuit")
    def circuit_state(self, obj: Provider) -> str:
        if not obj.pk:
            return "—"
        info = self._circuit(obj)
        text = str(info.state).replace("_", "-")
        if info.failure_count:
            text += f" ({info.failure_count} failures)"
        return badge(text, str(info.state))

    @admin.display(description="last probe (UTC)", ordering="_health_checked_at")
    def last_probe(self, obj: Provider) -> str:
        if not obj.pk:
            return "—"
        if hasattr(obj, "_health_checked_at"):
            return utc_text(obj._health_checked_at)
        check = self._latest(obj)
        return utc_text(check.checked_at if check else None)

    @admin.display(description="last error")
    def last_error(self, obj: Provider) -> str:
        check = self._latest(obj) if obj.pk else None
        if check is None or not (check.error_message or check.error_category):
            return "—"
        # Stored messages were redacted when probed; redact again with the current keys, in
        # case a key changed since (an old key is as secret as the new one).
        keys = list(ProviderKeyCredential.objects.filter(provider=obj))
        text = redact_for(provider_snapshot_build(obj, keys), check.error_message)
        return (
            f"{check.get_error_category_display()}: {text}"
            if text
            else str(check.get_error_category_display())
        )

    # --- probes ------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        extra = [
            path(
                "<path:object_id>/check/",
                self.admin_site.admin_view(self.check_now_view),
                name=f"{opts.app_label}_{opts.model_name}_check",
            )
        ]
        return extra + super().get_urls()

    def check_now_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: probe this instance now, then back to its form with the result shown."""
        provider = self.get_object(request, unquote(object_id))
        if provider is None:
            raise Http404("No such provider instance.")
        change_url = reverse("admin:providers_provider_change", args=[provider.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        if not self.has_change_permission(request, provider):
            raise PermissionDenied("Probing an instance needs the change permission.")
        level, text = probe_message(health_check_run(provider_id=provider.pk), provider)
        self.message_user(request, f"Checked now: {text}", level)
        return HttpResponseRedirect(change_url)

    @admin.action(description="Probe selected instances now", permissions=["change"])
    def probe_selected(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset.order_by("name"):
            level, text = probe_message(health_check_run(provider_id=provider.pk), provider)
            self.message_user(request, text, level)


@admin.register(HealthCheck)
class HealthCheckAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Probe history, read-only: written by the health probes only."""

    list_display = (
        "checked_at_utc",
        "provider",
        "status_badge",
        "probe",
        "latency_ms",
        "http_status",
        "error_category",
        "error_message",
    )
    list_filter = ("provider", "status", "checked_at")
    list_select_related = ("provider",)
    date_hierarchy = "checked_at"
    search_fields = ("provider__name", "error_message")
    ordering = ("-checked_at", "-id")

    @admin.display(description="checked at (UTC)", ordering="checked_at")
    def checked_at_utc(self, obj: HealthCheck) -> str:
        return utc_text(obj.checked_at)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: HealthCheck) -> str:
        return badge(obj.status, obj.status)
