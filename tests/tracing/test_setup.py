"""Turning tracing on from the environment, the cost of it being off, and a collector that is
down."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from gateway.proxy import tracing
from gateway.proxy.tracing_export import QuietExporter
from gateway.routing.table import RouteTable
from providers.http import instance_headers
from providers.snapshot import provider_snapshot_build
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import InProcessGateway


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            True,
        ),
    ],
)
def test_tracing_wanted_follows_the_otel_variables(env: dict[str, str], wanted: bool) -> None:
    assert tracing.tracing_wanted(env) is wanted


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_unsupported_settings_are_refused_by_name(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=setting):
        tracing.tracing_wanted(env)


def test_service_name_defaults_to_llm_gateway() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    try:
        provider = tracing.tracing_setup(InMemorySpanExporter(), env={}, batch=False)
        assert provider.resource.attributes["service.name"] == "llm-gateway"
        env = {"OTEL_SERVICE_NAME": "gw-eu"}
        provider = tracing.tracing_setup(InMemorySpanExporter(), env=env, batch=False)
        assert provider.resource.attributes["service.name"] == "gw-eu"
    finally:
        tracing.tracing_shutdown()


def test_off_the_gateway_never_imports_the_tracing_sdk() -> None:
    # redis-py imports parts of opentelemetry itself when they are installed (its own optional
    # metrics); what tracing needs (SDK trace, exporter, propagators) must stay unimported.
    code = (
        "import os, sys, django\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'\n"
        "for name in [n for n in os.environ if n.startswith('OTEL_')]: del os.environ[n]\n"
        "django.setup()\n"
        "import gateway.asgi, gateway.proxy.app\n"
        "from gateway.proxy import tracing\n"
        "assert not tracing.tracing_configure_from_env()\n"
        "wanted = ('opentelemetry.sdk.trace', 'opentelemetry.exporter',"
        " 'opentelemetry.propagate')\n"
        "print(sorted(m for m in sys.modules if m.startswith(wanted)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_trace_headers_replace_a_forwarded_traceparent_whatever_its_case(
    db: None, fake_upstream: FakeUpstream
) -> None:
    inst = make_provider("fwd", upstream_url=fake_upstream.url, forward_headers=["traceparent"])
    provider = provider_snapshot_build(inst.provider, list(inst.keys.values()), env={})
    client = {"TraceParent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    ours = {"traceparent": "00-" + "3" * 32 + "-" + "4" * 16 + "-01"}
    sent = instance_headers(provider, {"authorization": "Bearer x"}, client, ours)
    assert [v for k, v in sent.items() if k.lower() == "traceparent"] == [ours["traceparent"]]
    assert instance_headers(provider, {}, client)["TraceParent"] == client["TraceParent"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_collector_drops_spans_and_warns_once_a_minute(
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inst = make_provider("u", upstream_url=fake_upstream.url)
    make_mapping("m", inst, "fake-gpt")
    key = make_vkey().plaintext
    install_table()
    now = [1000.0]
    endpoint = f"http://127.0.0.1:{closed_port()}/v1/traces"
    exporter = QuietExporter(OTLPSpanExporter(endpoint=endpoint, timeout=0.5), clock=lambda: now[0])
    provider = tracing.tracing_setup(exporter, env={}, batch=True)
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    def requests_then_flush(n: int) -> None:
        for _ in range(n):

            async def call(client: Any) -> Any:
                return await client.post(
                    "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
                )

            assert gateway.run(call).status_code == 200
        provider.force_flush()

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno >= logging.WARNING]

    try:
        with caplog.at_level(logging.DEBUG):
            requests_then_flush(2)
            requests_then_flush(2)
            now[0] += 30
            requests_then_flush(1)
            assert len(warnings()) == 1, [r.getMessage() for r in warnings()]
            assert "4 dropped" in warnings()[0].getMessage()
            now[0] += 31  # a minute since the first warning
            requests_then_flush(1)
    finally:
        tracing.tracing_shutdown()
    found = warnings()
    assert [r.name for r in found] == ["gateway.proxy.tracing_export"] * 2
    # Two spans a request: 4 in the first warning, the 8 of the next four requests in the second.
    assert "4 dropped" in found[0].getMessage() and "8 dropped" in found[1].getMessage()
    assert all(endpoint not in r.getMessage() for r in found)


def test_configure_from_env_turns_tracing_on_with_the_otlp_exporter() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    try:
        assert tracing.tracing_configure_from_env(env) is True
        assert tracing.ON and not tracing.CAPTURE_CONTENT
    finally:
        tracing.tracing_shutdown()
    assert not tracing.ON
    assert tracing.tracing_configure_from_env({}) is False
