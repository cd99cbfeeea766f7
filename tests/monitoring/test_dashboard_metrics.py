"""The Grafana dashboard and the Prometheus alert rules only name series ``/metrics`` serves.

Real traffic goes through the gateway (in-process ASGI app, fake upstreams on loopback), then
``/metrics`` is scraped and every metric name in the dashboard's PromQL (panels and template
variables) and in the alert rules must be a series in it: renaming a metric or a suffix
without the dashboard (or the other way round) fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from gateway.routing.table import RouteTable
from gateway.usage.budgets import budgets_check
from gateway.usage.events import InMemoryUsageQueue, set_usage_queue
from mappings.models import ModelPrice
from providers.health import health_check_run
from tests.conftest import missing_service
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.monitoring.test_views import RecordingQueue, _sample
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/dashboards/gateway.json"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
PROMETHEUS = ROOT / "deploy/prometheus/prometheus.yml"
DATASOURCES = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
DASHBOARD_PROVIDERS = ROOT / "deploy/grafana/provisioning/dashboards/gateway.yml"

#: What the dashboard must show (panel titles).
PANELS = {
    "Requests per second by alias",
    "Errors by instance, alias and error type",
    "Upstream latency p50/p95/p99 by instance",
    "Upstream latency p50/p95/p99 by alias",
    "Time to first token p50/p95/p99 by instance",
    "Time to first token p50/p95/p99 by alias",
    "Cost per hour by instance",
    "Cost per hour by account group",
    "Cost per hour by key",
    "Usage queue depth",
    "Usage spool size",
    "Budget use by virtual key",
    "Health probe outcomes",
    "Instance health (down)",
    "Circuit open",
}
ALERT_NAMES = {
    "GatewayInstanceDown",
    "GatewayCircuitOpen",
    "GatewayHighErrorRate",
    "GatewayUsageQueueBacklog",
    "GatewayUsageSpoolNotEmpty",
    "GatewayBudgetOverThreshold",
}

# --- PromQL: which identifiers are metric names ---------------------------------------------

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
# Label lists: by (...), without (...), on (...), ignoring (...), group_left (...), ...
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{?\w+(?::\w+)?\}?")
# Grafana's label_values(metric, label): the second argument is a label, not a metric.
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)")
_IDENT = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()")
_NUMBER_SUFFIX = re.compile(r"\d+(ms|s|m|h|d|w|y)\b")


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression (or a Grafana variable query).

    Identifiers followed by ``(`` are functions or aggregations; strings, label matchers
    (``{...}``), ranges (``[5m]``), label lists (``by (le, alias)``), Grafana variables and
    PromQL keywords are not metric names."""
    text = _LABEL_VALUES.sub(r"\1", expr)
    text = _STRING.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _NUMBER_SUFFIX.sub(" ", text)
    return {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}


def test_metric_names_parser() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, provider) (rate("
        'gateway_upstream_latency_seconds_bucket{provider=~"$provider", alias="x(y)"}'
        "[$__rate_interval])))"
        " / on (provider_id) group_left(provider) gateway_provider_enabled == bool 1"
        " and max without (queue) (gateway_usage_queue_depth offset 5m) > 1e3"
    )
    assert metric_names(expr) == {
        "gateway_upstream_latency_seconds_bucket",
        "gateway_provider_enabled",
        "gateway_usage_queue_depth",
    }
    assert metric_names("label_values(gateway_requests_total, alias)") == {"gateway_requests_total"}
    assert metric_names("sum(rate(x_total[5m])) * 3600") == {"x_total"}


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            exprs.append(query)
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def served_series(text: str) -> set[str]:
    """Sample names in an exposition (counters as ``_total``, histograms as ``_bucket``...)."""
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


# --- the files ------------------------------------------------------------------------------


def test_dashboard_has_the_panels_and_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert titles >= PANELS, PANELS - titles
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert datasource["type"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for ref in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
            assert ref == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # The provisioning provider reads the directory compose mounts the dashboards into.
    provider = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_alert_rules_file_has_the_six_alerts() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == ALERT_NAMES
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    by_name = {rule["alert"]: rule for rule in rules}
    assert by_name["GatewayCircuitOpen"]["for"] == "5m"
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == [ALERTS.name]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_promtool_accepts_the_rules_and_the_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_service("promtool (Debian package prometheus); the YAML checks above ran")
    for args in (
        ["check", "rules", str(ALERTS)],
        ["check", "config", "--syntax-only", str(PROMETHEUS)],
    ):
        done = subprocess.run(
            [promtool, *args], capture_output=True, text=True, check=False, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


# --- the drift check: traffic, scrape, every referenced name is served ----------------------


def drive_traffic(
    fake_upstream: FakeUpstream,
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
) -> dict[str, Any]:
    """Successes (whole and streamed), an upstream failure, a health probe, a budgeted key."""
    ok = make_provider(
        "dash-ok",
        "openai",
        upstream_url=fake_upstream.url,
        keys=[{"name": "dash-key", "account_group": 3, "primary": True}],
    )
    bad = make_provider("dash-bad", "openai", upstream_url=fake_upstream.url)
    # An upstream's own error code (unbounded words) is counted as upstream_error.
    quirk = {"error": {"message": "no", "type": "invalid_request_error", "code": "quirk_42"}}
    fake_upstream.behave(Behaviour.fail(400, body=quirk), key=bad.api_key)
    make_mapping("dash-alias", ok, "fake-gpt")
    make_mapping("dash-bad-alias", bad, "fake-gpt")
    ModelPrice.objects.create(
        provider=ok.provider,
        provider_model_id="fake-gpt",
        input_per_million=1000,
        output_per_million=2000,
    )
    vkey, key = make_vkey("dash-app", budget_amount=Decimal("5"))
    install_table()
    health_check_run(provider_id=ok.id)
    health_check_run(provider_id=bad.id)

    queue = RecordingQueue()
    set_usage_queue(queue)
    headers = {"authorization": f"Bearer {key}"}
    chat: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}]}

    async def run(client: Any) -> list[int]:
        statuses = []
        for body in (
            {**chat, "model": "dash-alias"},
            {**chat, "model": "dash-alias", "stream": True},
            {**chat, "model": "dash-bad-alias"},
        ):
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
            statuses.append(response.status_code)
        await queue.aclose()
        return statuses

    statuses = gateway.run(run)
    assert statuses == [200, 200, 400]
    return {
        "ok": ok,
        "bad": bad,
        "vkey": vkey,
        "events": [orjson.loads(p) for p in queue.delivered],
    }


def test_every_metric_the_dashboard_and_alerts_name_is_served(
    fake_upstream: FakeUpstream,
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    usage_queue: InMemoryUsageQueue,
) -> None:
    found = drive_traffic(fake_upstream, install_table, gateway)
    text = Client().get("/metrics").content.decode()
    served = served_series(text)

    referenced: dict[str, set[str]] = {}
    for expr in dashboard_expressions(json.loads(DASHBOARD.read_text())):
        for name in metric_names(expr):
            referenced.setdefault(name, set()).add("dashboard")
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            referenced.setdefault(name, set()).add(rule["alert"])
    assert len(referenced) >= 12  # the parser found the expressions at all
    missing = {name: sorted(where) for name, where in referenced.items() if name not in served}
    assert not missing, f"named but not served by /metrics: {missing}"

    # The new series carry the labels the panels group by, with this traffic's values.
    ok, bad = str(found["ok"].id), str(found["bad"].id)
    alias = {"provider_id": ok, "provider": "dash-ok", "alias": "dash-alias"}
    assert _sample(text, "gateway_upstream_latency_seconds_count", **alias) == 2
    assert _sample(text, "gateway_time_to_first_token_seconds_count", **alias) == 1
    assert (
        _sample(
            text,
            "gateway_errors_total",
            provider_id=bad,
            alias="dash-bad-alias",
            error_type="upstream_error",
        )
        == 1
    )
    events = [e for e in found["events"] if e["provider_id"] == found["ok"].id]
    key_id = str(events[0]["key_id"])
    assert {e["key_name"] for e in events} == {"dash-key"}
    cost = sum(e["prompt_tokens"] * 1000 + e["completion_tokens"] * 2000 for e in events) / 1e6
    assert cost > 0
    assert _sample(
        text,
        "gateway_cost_usd_total",
        provider_id=ok,
        account_group="3",
        key_id=key_id,
        key="dash-key",
    ) == pytest.approx(cost)
    assert _sample(text, "gateway_health_probes_total", provider_id=ok, outcome="healthy") == 1
    assert _sample(text, "gateway_health_probes_total", provider_id=bad, outcome="down") == 1
    assert _sample(text, "gateway_health_probes_total", provider_id=ok, outcome="down") == 0
    vk = {"virtual_key_id": str(found["vkey"].id), "virtual_key": "dash-app", "period": "monthly"}
    assert _sample(text, "gateway_budget_amount_usd", **vk) == 5
    assert _sample(text, "gateway_usage_queue_depth", queue="process_buffer") == 0
    # The secret of a provider key never becomes a label value.
    assert found["ok"].api_key not in text


def test_unknown_upstream_error_codes_are_one_label_value() -> None:
    from gateway.monitoring.metrics import error_label

    assert error_label("model_not_found") == "model_not_found"
    assert error_label("upstream_stream_broken") == "upstream_stream_broken"
    assert error_label("some_provider_specific_code_123") == "upstream_error"
    assert error_label("") == "unknown"


def test_redis_world_counts_probes_budget_use_and_stream_backlog(
    with_redis: str,
    fake_upstream: FakeUpstream,
    settings: Any,
) -> None:
    """With Redis the scrape reads what workers published: probe counts, budget use, the
    stream's backlog and pending entries (no SQL for those)."""
    import redis

    from tests.factories import make_provider_row, make_usage

    inst = make_provider("dash-redis", "openai", upstream_url=fake_upstream.url)
    health_check_run(provider_id=inst.id)
    health_check_run(provider_id=inst.id)
    vkey, _ = make_vkey("dash-redis-app", budget_amount=Decimal("2"))
    make_usage(make_provider_row(), virtual_key=vkey, cost=Decimal("1.5"))
    budgets_check()
    client = redis.Redis.from_url(with_redis)
    stream = settings.GATEWAY_USAGE_STREAM
    for _ in range(3):
        client.xadd(stream, {b"e": b"{}"})
    client.xgroup_create(stream, settings.GATEWAY_USAGE_GROUP, id="0")
    client.xreadgroup(settings.GATEWAY_USAGE_GROUP, "c1", {stream: ">"}, count=1)
    client.close()

    text = Client().get("/metrics").content.decode()
    assert (
        _sample(text, "gateway_health_probes_total", provider_id=str(inst.id), outcome="healthy")
        == 2
    )
    vk = {"virtual_key_id": str(vkey.id), "virtual_key": "dash-redis-app"}
    assert _sample(text, "gateway_budget_spend_usd", **vk) == 1.5
    assert _sample(text, "gateway_budget_used_ratio", **vk) == 0.75
    assert _sample(text, "gateway_usage_queue_depth", queue="redis_stream") == 3
    assert _sample(text, "gateway_usage_queue_depth", queue="redis_pending") == 1
