"""Three-state mapping capabilities (undeclared passes, declared false blocks; config import and
export, ``clean()``, the migration's rule) and the retry headers of the gateway's errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from gateway.config_io.exporter import config_export
from gateway.config_io.importer import config_import
from gateway.core.errors import NoProviderAvailable
from gateway.proxy import render
from gateway.proxy.attempts import AttemptLoop
from gateway.proxy.context import RequestContext
from gateway.proxy.endpoints.base import Call
from gateway.proxy.endpoints.openai import CHAT as CHAT_SPEC
from gateway.proxy.relay import read_whole
from gateway.routing.plan import RoutePlan
from gateway.routing.state import InstanceView, RouteView
from gateway.routing.table import RouteTable, VirtualKeySnapshot
from mappings.admin import capability_summary
from mappings.models import ModelProviderMapping
from providers.circuit import CircuitState
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.proxy.conftest import InProcessGateway

VKEY = VirtualKeySnapshot(
    id=1,
    name="k",
    allowed_models=frozenset(),
    is_enabled=True,
    expires_at=None,
    requests_per_minute=None,
    tokens_per_minute=None,
    budget_amount=None,
    budget_period="",
)
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "chat", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def post(gateway: InProcessGateway, key: str | None, path: str, body: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}

    async def call(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, content=orjson.dumps(body), headers=headers)

    return gateway.run(call)


# -- capabilities on the request path ----------------------------------------------------------


@pytest.fixture
def world(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> dict[str, Any]:
    inst = make_provider("up", "openai", upstream_url=fake_upstream.url)
    make_mapping("embed-undeclared", inst, "fake-embed", supports_tools=None)
    make_mapping("embed-refused", inst, "fake-gpt", supports_embeddings=False)
    make_mapping("chat", inst, "fake-gpt")
    make_mapping("no-stream", inst, "fake-gpt", supports_streaming=False)
    key = make_vkey("caps")[1]
    install_table()
    return {"key": key}


def test_embeddings_alias_without_declared_capabilities_works(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = {"model": "embed-undeclared", "input": "hello"}
    response = post(gateway, world["key"], "/v1/embeddings", body)
    assert response.status_code == 200, response.text
    assert fake_upstream.requests()[0].route == "openai_embeddings"


def test_declared_false_blocks_with_400(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = {"model": "embed-refused", "input": "hello"}
    response = post(gateway, world["key"], "/v1/embeddings", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_capability"
    assert "does not support embeddings" in response.json()["error"]["message"]
    streamed = post(
        gateway,
        world["key"],
        "/v1/chat/completions",
        {**CHAT, "model": "no-stream", "stream": True},
    )
    assert streamed.status_code == 400
    assert "streaming chat" in streamed.json()["error"]["message"]
    assert fake_upstream.requests() == []


def test_clean_refuses_only_a_mapping_declared_unable_to_do_anything(db: None) -> None:
    inst = make_provider("c", "mock")
    ModelProviderMapping(
        model_alias="a", provider=inst.provider, provider_model_id="m"
    ).full_clean()
    with pytest.raises(ValidationError):
        ModelProviderMapping(
            model_alias="b",
            provider=inst.provider,
            provider_model_id="m",
            supports_chat=False,
            supports_embeddings=False,
        ).full_clean()


def test_admin_summary_shows_declared_values_only(db: None) -> None:
    inst = make_provider("s", "mock")
    mapping = make_mapping("x", inst, supports_tools=None, supports_chat=True)
    assert capability_summary(mapping) == "chat"
    mapping.supports_embeddings = False
    assert capability_summary(mapping) == "chat; not: embeddings"
    mapping.supports_chat = None
    mapping.supports_embeddings = None
    assert capability_summary(mapping) == "undeclared"


def test_import_without_capabilities_is_undeclared_and_export_omits_them(db: None) -> None:
    data = {
        "providers": [{"name": "p", "type": "mock"}],
        "mappings": [
            {"alias": "plain", "provider": "p", "model": "m"},
            {"alias": "emb", "provider": "p", "model": "e", "capabilities": {"chat": False}},
            {"alias": "nul", "provider": "p", "model": "n", "capabilities": {"tools": None}},
        ],
    }
    config_import(data=data)
    plain = ModelProviderMapping.objects.get(model_alias="plain")
    assert (plain.supports_chat, plain.supports_embeddings, plain.supports_reasoning) == (
        None,
        None,
        None,
    )
    assert ModelProviderMapping.objects.get(model_alias="emb").supports_chat is False
    assert ModelProviderMapping.objects.get(model_alias="nul").supports_tools is None
    exported = {m["alias"]: m for m in config_export()["mappings"]}
    assert "capabilities" not in exported["plain"] and "capabilities" not in exported["nul"]
    assert exported["emb"]["capabilities"] == {"chat": False}


def test_migration_undeclares_rows_left_at_the_old_defaults(transactional_db: None) -> None:
    executor = MigrationExecutor(connection)
    before = [("mappings", "0003_claude_tiers")]
    after = [("mappings", "0004_capabilities_undeclared")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    Provider = old.get_model("providers", "Provider")
    Mapping = old.get_model("mappings", "ModelProviderMapping")
    provider = Provider.objects.create(name="mig", provider_type="mock")
    defaults = Mapping.objects.create(model_alias="d", provider=provider, provider_model_id="m")
    edited = Mapping.objects.create(
        model_alias="e", provider=provider, provider_model_id="m", supports_vision=True
    )
    embed = Mapping.objects.create(
        model_alias="x",
        provider=provider,
        provider_model_id="m",
        supports_chat=False,
        supports_streaming=False,
        supports_embeddings=True,
    )
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    rows = {m.pk: m for m in ModelProviderMapping.objects.all()}
    d, e, x = rows[defaults.pk], rows[edited.pk], rows[embed.pk]
    assert (d.supports_chat, d.supports_streaming) == (True, True)  # True stays True
    assert (d.supports_embeddings, d.supports_vision, d.supports_tools) == (None, None, None)
    assert (e.supports_vision, e.supports_embeddings, e.supports_tools) == (True, False, False)
    assert (x.supports_chat, x.supports_streaming, x.supports_embeddings) == (False, False, True)
    assert d.supports_reasoning is None
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


# -- retry headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGE)]
)
def test_gateway_401_400_404_say_do_not_retry(
    world: dict[str, Any], gateway: InProcessGateway, path: str, body: dict[str, Any]
) -> None:
    unauthenticated = post(gateway, None, path, body)
    wrong_key = post(gateway, "sk-wrong", path, body)
    invalid = post(gateway, world["key"], path, {"model": "chat"})
    unknown = post(gateway, world["key"], path, {**body, "model": "no-such-alias"})
    for response, status in (
        (unauthenticated, 401),
        (wrong_key, 401),
        (invalid, 400),
        (unknown, 404),
    ):
        assert response.status_code == status, response.text
        assert response.headers["x-should-retry"] == "false"


def test_retryable_answers_do_not_say_do_not_retry(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.behave(Behaviour.fail(503, retry_after=7))
    response = post(gateway, world["key"], "/v1/chat/completions", CHAT)
    assert response.status_code == 503
    assert "x-should-retry" not in response.headers
    assert response.headers["retry-after"] == "7"  # the upstream's wait, relayed


def test_no_available_provider_tells_when_the_first_circuit_reopens() -> None:
    # Every candidate skipped (circuits open, the one trial already taken elsewhere): the 503
    # says when the first circuit may be tried again.
    now = time.time()
    view = RouteView(
        instances={
            1: InstanceView(circuit=CircuitState.OPEN, retry_at=now + 40),
            2: InstanceView(circuit=CircuitState.OPEN, retry_at=now + 90),
            3: InstanceView(),
        }
    )
    ctx = RequestContext(vkey=VKEY, endpoint="chat", client_headers={})
    ctx.plan = RoutePlan(strategy="priority", view=view, ordered=[])
    call = Call(alias="a", body={})
    error = AttemptLoop(ctx, CHAT_SPEC, call, read_whole).final_error()
    assert isinstance(error, NoProviderAvailable)
    headers = render.error_headers(error, ctx)
    assert render.status_of(error) == 503 and "x-should-retry" not in headers
    assert 39 <= int(headers["retry-after"]) <= 40
