"""Forwarded client headers never replace the gateway's own, and ``anthropic-beta`` reaches an
upstream only as far as the instance's allow-list admits it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from providers import http
from providers.adapters.anthropic import AnthropicAdapter
from providers.betas import DEFAULT_ALLOW, filter_betas, validate_beta_allow
from providers.snapshot import KeySnapshot, ProviderSnapshot
from tests.factories import provider_snapshot

CLAUDE_CODE_BETAS = (
    "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"
    "fine-grained-tool-streaming-2025-05-14,context-management-2025-06-27"
)


def snapshot(provider_type: str = "anthropic", **kw: object) -> ProviderSnapshot:
    return provider_snapshot(name="shared", provider_type=provider_type, base_url="http://x", **kw)


KEY = KeySnapshot(
    id=1,
    name="k",
    api_key="sk-ant-shared",
    account_group=0,
    is_primary=True,
    base_url="http://x",
    organization="",
)


@pytest.mark.parametrize(
    "name", ["OpenAI-Organization", "openai-organization", "Anthropic-Version", "X-Api-Key"]
)
def test_a_forwarded_header_never_replaces_an_adapter_header(name: str) -> None:
    provider = snapshot(forward_headers=frozenset({name.lower()}))
    adapter = {"openai-organization": "org-gateway", "anthropic-version": "2023-06-01"}
    adapter["x-api-key"] = "sk-upstream"
    headers = http.instance_headers(provider, adapter, {name: "client-value"})
    assert "client-value" not in headers.values()
    assert {k.lower() for k in headers} == set(adapter)


def test_a_forwarded_header_never_replaces_a_custom_header() -> None:
    provider = snapshot(
        forward_headers=frozenset({"x-cost-center", "x-trace"}),
        custom_headers=(("X-Cost-Center", "cc-42"),),
    )
    headers = http.instance_headers(provider, {}, {"x-cost-center": "cc-client", "x-trace": "t1"})
    assert headers == {"x-trace": "t1", "X-Cost-Center": "cc-42"}


def test_a_custom_header_replaces_the_adapters_in_any_case() -> None:
    provider = snapshot(custom_headers=(("Anthropic-Version", "2024-01-01"),))
    headers = http.instance_headers(provider, {"anthropic-version": "2023-06-01"})
    assert headers == {"Anthropic-Version": "2024-01-01"}


def native(provider: ProviderSnapshot, client: dict[str, str]) -> dict[str, str]:
    request = AnthropicAdapter().messages_request(
        provider=provider, key=KEY, body={"model": "m"}, stream=False, client_headers=client
    )
    return request.headers


def test_the_default_admits_claude_codes_format_betas_only() -> None:
    headers = native(snapshot(), {"anthropic-beta": CLAUDE_CODE_BETAS + ",context-1m-2025-08-07"})
    sent = headers["anthropic-beta"].split(",")
    assert "claude-code-20250219" in sent and "interleaved-thinking-2025-05-14" in sent
    assert "context-management-2025-06-27" in sent
    assert "context-1m-2025-08-07" not in sent and "oauth-2025-04-20" not in sent


def test_an_instance_list_narrows_or_opens_the_betas() -> None:
    client = {"anthropic-beta": "files-api-2025-04-14,interleaved-thinking-2025-05-14"}
    assert "anthropic-beta" not in native(snapshot(anthropic_beta_allow=()), client)
    only = native(snapshot(anthropic_beta_allow=("files-api",)), client)
    assert only["anthropic-beta"] == "files-api-2025-04-14"
    every = native(snapshot(anthropic_beta_allow=("*",)), client)
    assert every["anthropic-beta"] == client["anthropic-beta"]


def test_an_allow_listed_forward_of_anthropic_beta_is_filtered_too() -> None:
    provider = snapshot(
        provider_type="openai_compatible",
        forward_headers=frozenset({"anthropic-beta"}),
        anthropic_beta_allow=("interleaved-thinking",),
    )
    headers = http.instance_headers(
        provider, {}, {"anthropic-beta": "context-1m-2025-08-07,interleaved-thinking-2025-05-14"}
    )
    assert headers == {"anthropic-beta": "interleaved-thinking-2025-05-14"}
    none = http.instance_headers(provider, {}, {"anthropic-beta": "context-1m-2025-08-07"})
    assert none == {}


def test_a_name_matches_dated_versions_not_other_names() -> None:
    assert filter_betas("tools-2024-04-04", ("tools",)) == "tools-2024-04-04"
    assert filter_betas("tools-extra-2024-04-04", ("tools",)) == ""
    assert "claude-code" in DEFAULT_ALLOW


@pytest.mark.parametrize("value", [None, [], ["*"], ["files-api", "context-1m-2025-08-07"]])
def test_valid_allow_lists(value: object) -> None:
    validate_beta_allow(value)


@pytest.mark.parametrize("value", ["*", ["a b"], [1], [""], {"x": 1}])
def test_invalid_allow_lists(value: object) -> None:
    with pytest.raises(ValidationError):
        validate_beta_allow(value)
