"""Presets for OpenAI-compatible clouds: request shaping, validation, import/export, API."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export
from gateway.config_io.importer import config_import
from gateway.config_io.migrate import config_migrate
from providers.adapters import get_adapter
from providers.health import health_check_run, probe_request
from providers.models import HealthCheck, Provider, ProviderKeyCredential
from providers.presets import PRESETS, PresetName
from providers.snapshot import provider_snapshot_build
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.factories import make_provider
from tests.fakes.upstream import FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401
from tests.reports.helpers import token_client

BODY: dict[str, Any] = {
    "model": "x",
    "messages": [{"role": "user", "content": "hi"}],
    "seed": 7,
    "max_completion_tokens": 20,
    "logit_bias": {"1": 2},
    "parallel_tool_calls": False,
    "store": True,
    "temperature": 0.2,
}


def _snapshot(preset: str, **fields: Any) -> Any:
    provider = Provider(id=1, name="p", provider_type="openai_compatible", preset=preset, **fields)
    key = ProviderKeyCredential(id=1, provider_id=1, key_name="k", api_key="sk-1", is_primary=True)
    return provider_snapshot_build(provider, [key], env={})


def _sent(preset: str, *, stream: bool = False) -> tuple[str, dict[str, Any], dict[str, str]]:
    snap = _snapshot(preset)
    req = get_adapter("openai_compatible").chat_request(
        provider=snap, key=snap.keys[0], model="m-1", body=BODY, stream=stream
    )
    return req.url, orjson.loads(req.body), req.headers


def test_every_preset_has_an_https_or_local_default_and_bearer_auth() -> None:
    assert set(PRESETS) == set(PresetName.values)
    for name in PresetName.values:
        url, body, headers = _sent(name)
        assert url == PRESETS[name].base_url + "/chat/completions"
        assert headers["authorization"] == "Bearer sk-1"
        assert body["model"] == "m-1" and body["temperature"] == 0.2
        for refused in PRESETS[name].refuses:
            assert refused not in body


def test_mistral_drops_refused_fields_renames_and_asks_no_stream_options() -> None:
    url, body, _ = _sent("mistral", stream=True)
    assert url == "https://api.mistral.ai/v1/chat/completions"
    assert "stream_options" not in body and body["stream"] is True
    assert body["random_seed"] == 7 and "seed" not in body
    assert body["max_tokens"] == 20 and "max_completion_tokens" not in body
    assert "logit_bias" not in body and "store" not in body


def test_groq_keeps_what_it_accepts_and_asks_for_stream_usage() -> None:
    url, body, _ = _sent("groq", stream=True)
    assert url == "https://api.groq.com/openai/v1/chat/completions"
    assert body["stream_options"] == {"include_usage": True}
    assert body["seed"] == 7 and body["parallel_tool_calls"] is False
    assert "logit_bias" not in body


def test_no_preset_passes_the_body_as_sent() -> None:
    snap = _snapshot("", base_url="http://h/v1")
    req = get_adapter("openai_compatible").chat_request(
        provider=snap, key=snap.keys[0], model="m", body=BODY, stream=False
    )
    assert orjson.loads(req.body)["logit_bias"] == {"1": 2}


def test_base_url_overrides_the_preset_default_and_probe_uses_models_path() -> None:
    snap = _snapshot("groq", base_url="http://127.0.0.1:9/groq/openai/v1")
    kind, req = probe_request(snap)
    assert kind == "models"
    assert req.url == "http://127.0.0.1:9/groq/openai/v1/models"


@pytest.mark.django_db
def test_clean_names_the_field() -> None:
    bad = Provider(name="a", provider_type="openai", preset="groq")
    with pytest.raises(ValidationError) as exc:
        bad.full_clean()
    assert "preset" in exc.value.message_dict
    unknown = Provider(name="b", provider_type="openai_compatible", preset="nope")
    with pytest.raises(ValidationError) as exc:
        unknown.full_clean()
    assert "preset" in exc.value.message_dict
    ppx = Provider(name="c", provider_type="openai_compatible", preset="perplexity")
    with pytest.raises(ValidationError) as exc:
        ppx.full_clean()
    assert "health_check_probe" in exc.value.message_dict
    ok = Provider(
        name="d",
        provider_type="openai_compatible",
        preset="perplexity",
        health_check_probe="completion",
        health_check_model="sonar",
    )
    ok.full_clean()  # no base_url needed: the preset has one


@pytest.mark.django_db
def test_import_export_round_trip_and_keyless_local_presets() -> None:
    data = {
        "providers": [
            {
                "name": "groq",
                "type": "openai_compatible",
                "preset": "groq",
                "keys": [{"name": "q1", "api_key": "gsk-secret", "primary": True}],
            },
            {"name": "local", "type": "openai_compatible", "preset": "vllm"},
        ]
    }
    config_import(data=data, environ={})
    groq = Provider.objects.get(name="groq")
    assert groq.preset == "groq" and groq.base_url == ""
    assert groq.effective_base_url == "https://api.groq.com/openai/v1"
    exported = {p["name"]: p for p in config_export()["providers"]}
    assert exported["groq"]["preset"] == "groq" and "base_url" not in exported["groq"]
    assert exported["groq"]["keys"][0]["api_key"] != "gsk-secret"
    assert exported["local"]["preset"] == "vllm"


@pytest.mark.django_db
def test_import_refuses_a_bad_preset_naming_the_field() -> None:
    data = {"providers": [{"name": "x", "type": "anthropic", "preset": "groq"}]}
    with pytest.raises(ConfigError) as exc:
        config_import(data=data, environ={})
    assert any("preset" in e for e in exc.value.errors)
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_api_creates_a_preset_instance_and_names_a_bad_preset() -> None:
    api: APIClient = token_client(
        staff=True,
        perms=["providers.add_provider", "providers.view_provider", "providers.change_provider"],
    )
    r = api.post(
        "/api/providers/",
        {
            "name": "mistral",
            "provider_type": "openai_compatible",
            "preset": "mistral",
            "keys": [{"key_name": "m", "api_key": "mk-1", "is_primary": True}],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    assert r.json()["preset"] == "mistral"
    r = api.post(
        "/api/providers/",
        {"name": "bad", "provider_type": "openai_compatible", "preset": "azure"},
        format="json",
    )
    assert r.status_code == 400
    assert "preset" in r.json()["error"]["fields"]


def test_litellm_prefixes_become_presets() -> None:
    result = config_migrate(
        fmt="litellm",
        source={
            "model_list": [
                {"model_name": "m", "litellm_params": {"model": "mistral/mistral-small-latest"}},
                {"model_name": "c", "litellm_params": {"model": "cerebras/llama3.1-8b"}},
                {
                    "model_name": "v",
                    "litellm_params": {
                        "model": "hosted_vllm/qwen",
                        "api_base": "http://gpu-box:8000/v1",
                    },
                },
            ]
        },
    )
    providers = {p["preset"]: p for p in result.data["providers"]}
    assert set(providers) == {"mistral", "cerebras", "vllm"}
    assert "base_url" not in providers["mistral"]
    assert providers["cerebras"]["keys"][0]["api_key"] == "${CEREBRAS_API_KEY}"
    assert providers["vllm"]["base_url"] == "http://gpu-box:8000/v1"


@pytest.mark.django_db
def test_admin_add_form_offers_presets_and_names_a_misplaced_one(admin_client: Client) -> None:
    url = admin_url(Provider, "add")
    page = admin_client.get(url).content.decode()
    assert 'name="preset"' in page and 'value="groq"' in page and 'value="lm_studio"' in page
    data = admin_form_data(admin_client, url, Provider)
    data.update(name="groq-main", provider_type="openai_compatible", preset="groq")
    data["keys-TOTAL_FORMS"] = "1"
    data.update({"keys-0-key_name": "q1", "keys-0-api_key": "gsk-1", "keys-0-is_primary": "on"})
    data.update({"keys-0-account_group": "0", "keys-0-is_enabled": "on"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    assert Provider.objects.get(name="groq-main").effective_base_url.endswith("groq.com/openai/v1")

    data.update(name="wrong", provider_type="anthropic", preset="groq")
    data["keys-0-api_key"] = "sk-ant"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert page_errors(response)["preset"] == [
        "a preset applies to openai_compatible instances only"
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(("preset", "path"), [("groq", "/groq/openai/v1"), ("vllm", "/vllm/v1")])
def test_health_probe_lists_models_at_the_preset_path(
    fake_upstream: FakeUpstream,  # noqa: F811
    preset: str,
    path: str,
) -> None:
    keys = [] if preset == "vllm" else None  # vLLM serves without a key
    inst = make_provider(
        f"probe-{preset}",
        "openai_compatible",
        base_url=fake_upstream.url + path,
        preset=preset,
        keys=keys,
    )
    health_check_run(provider_id=inst.id)
    check = HealthCheck.objects.get(provider=inst.provider)
    assert (check.status, check.probe, check.http_status) == ("healthy", "models", 200)
    [request] = fake_upstream.requests()
    assert request.method == "GET" and request.path == path + "/models"
    if preset == "vllm":
        assert "authorization" not in request.headers
    else:
        assert request.headers["authorization"] == f"Bearer {inst.api_keys['primary']}"
