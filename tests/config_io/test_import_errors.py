"""Broken files: every problem is named by entry and field, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from gateway.config_io.errors import ConfigError
from gateway.config_io.importer import config_import
from gateway.keys.models import VirtualKey, hash_key
from mappings.models import ModelPrice, ModelProviderMapping
from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential
from tests.config_io.seed import write_config

pytestmark = pytest.mark.django_db

Edit = Callable[[dict[str, Any]], None]


def _unknown_provider(c: dict[str, Any]) -> None:
    c["mappings"][2]["provider"] = "nope"
    c["mappings"][2]["alias"] = "gpt-4o"


def _account_group_40(c: dict[str, Any]) -> None:
    c["providers"][1]["keys"][0]["account_group"] = 40


def _two_primaries(c: dict[str, Any]) -> None:
    c["providers"][0]["keys"][1]["primary"] = True


def _azure_without_version(c: dict[str, Any]) -> None:
    del c["providers"][2]["api_version"]


def _header_name_injection(c: dict[str, Any]) -> None:
    c["providers"][0]["custom_headers"]["X-Bad\r\nInjected"] = "1"


def _header_value_injection(c: dict[str, Any]) -> None:
    c["providers"][0]["custom_headers"]["X-Bad"] = "x\r\nInjected: 1"


def _reserved_header(c: dict[str, Any]) -> None:
    c["providers"][3]["custom_headers"]["Transfer-Encoding"] = "chunked"


def _typo_top(c: dict[str, Any]) -> None:
    c["providers"][1]["timeuot"] = 5


def _typo_nested(c: dict[str, Any]) -> None:
    c["virtual_keys"][0]["budget"]["ammount"] = 5


def _wrong_type(c: dict[str, Any]) -> None:
    c["providers"][0]["keys"][0]["primary"] = "yes"


def _bad_choice(c: dict[str, Any]) -> None:
    c["routing"]["strategy"] = "fastest"


def _duplicate_provider(c: dict[str, Any]) -> None:
    c["providers"].append({"name": "openai-development", "type": "openai"})


def _duplicate_key_name(c: dict[str, Any]) -> None:
    c["providers"][0]["keys"][1]["name"] = "prod-1"


def _keyless_openai_key(c: dict[str, Any]) -> None:
    del c["providers"][1]["keys"][0]["api_key"]


def _price_missing_output(c: dict[str, Any]) -> None:
    del c["mappings"][0]["price"]["output_per_million"]


def _negative_price(c: dict[str, Any]) -> None:
    c["mappings"][0]["price"]["input_per_million"] = -1


def _mapping_without_capability(c: dict[str, Any]) -> None:
    # Undeclared is fine; declaring that it can do neither is not.
    c["mappings"][5]["capabilities"] = {"chat": False, "embeddings": False}


CASES: list[tuple[Edit, str]] = [
    (_unknown_provider, "mappings[2] (gpt-4o): unknown provider 'nope'"),
    (
        _account_group_40,
        "providers[1] (openai-development).keys[0].account_group: "
        "account group must be between 0 and 32",
    ),
    (
        _two_primaries,
        "providers[0] (openai-production).keys[1].primary: only one primary key per instance",
    ),
    (
        _azure_without_version,
        "providers[2] (azure-eastus).api_version: Azure OpenAI instances need an api_version",
    ),
    (
        _header_name_injection,
        "providers[0] (openai-production).custom_headers: "
        "'X-Bad\\r\\nInjected' is not a valid HTTP header name",
    ),
    (
        _header_value_injection,
        "providers[0] (openai-production).custom_headers: "
        "header 'X-Bad': value must not contain CR, LF or NUL",
    ),
    (_reserved_header, "header 'Transfer-Encoding' is managed by the gateway"),
    (_typo_top, "providers[1] (openai-development): unknown key(s) 'timeuot'"),
    (_typo_nested, "virtual_keys[0] (marketing-app).budget: unknown key(s) 'ammount'"),
    (_wrong_type, "providers[0] (openai-production).keys[0].primary: must be true or false"),
    (_bad_choice, "routing.strategy: Value 'fastest' is not a valid choice."),
    (
        _duplicate_provider,
        "providers[5] (openai-development).name: duplicate provider name "
        "(also providers[1] (openai-development))",
    ),
    (_duplicate_key_name, "providers[0] (openai-production).keys[1].name: duplicate key name"),
    (
        _keyless_openai_key,
        "providers[1] (openai-development).keys[0].api_key: openai keys need an api_key",
    ),
    (_price_missing_output, "mappings[0] (gpt-4o).price.output_per_million: is required"),
    (_negative_price, "mappings[0] (gpt-4o).price.input_per_million: Ensure this value is"),
    (
        _mapping_without_capability,
        "mappings[5] (llama3): a mapping must not declare both chat and embeddings as false",
    ),
]


def _import_file(path: Path) -> str:
    with pytest.raises(CommandError) as exc:
        call_command("gateway_config", "import", str(path), stdout=StringIO())
    return str(exc.value)


def _row_counts() -> tuple[int, ...]:
    return tuple(
        m.objects.count()
        for m in (Provider, ProviderKeyCredential, ModelProviderMapping, ModelPrice, VirtualKey)
    )


@pytest.mark.parametrize(("edit", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_broken_file_writes_nothing_and_names_the_problem(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str], edit: Edit, message: str
) -> None:
    edit(seed)
    error = _import_file(write_config(tmp_path / "gateway.yaml", seed))
    assert message in error
    assert "nothing was written" in error
    assert _row_counts() == (0, 0, 0, 0, 0)
    assert config_version_db() == 0


@pytest.mark.parametrize(("edit", "message"), CASES[:6], ids=[c[0].__name__ for c in CASES[:6]])
def test_broken_file_leaves_an_existing_configuration_untouched(
    seed: dict[str, Any], seed_env: dict[str, str], edit: Edit, message: str
) -> None:
    config_import(data=seed)
    counts, version = _row_counts(), config_version_db()
    stamps = sorted(Provider.objects.values_list("name", "updated_at", "timeout"))
    seed["providers"][0]["timeout"] = 10  # a valid change that must not land either
    edit(seed)

    with pytest.raises(ConfigError) as exc:
        config_import(data=seed)

    assert any(message in e for e in exc.value.errors)
    assert _row_counts() == counts
    assert config_version_db() == version
    assert sorted(Provider.objects.values_list("name", "updated_at", "timeout")) == stamps


def test_missing_environment_variable_is_named(
    tmp_path: Path,
    seed: dict[str, Any],
    seed_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("COST_CENTER")
    monkeypatch.delenv("MARKETING_KEY")
    error = _import_file(write_config(tmp_path / "gateway.yaml", seed))
    assert (
        "providers[0] (openai-production).keys[0].api_key: "
        "environment variable OPENAI_API_KEY is not set"
    ) in error
    assert (
        "providers[0] (openai-production).custom_headers.X-Cost-Center: "
        "environment variable COST_CENTER is not set"
    ) in error
    assert "virtual_keys[0] (marketing-app).key: environment variable MARKETING_KEY is not set" in (
        error
    )
    assert _row_counts() == (0, 0, 0, 0, 0)


def test_all_problems_are_reported_together(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    for edit, _ in CASES[:4]:
        edit(seed)
    error = _import_file(write_config(tmp_path / "gateway.yaml", seed))
    for _, message in CASES[:4]:
        assert message in error


def test_primary_kept_on_a_key_missing_from_the_file_conflicts(
    seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    config_import(data=seed)
    keys = seed["providers"][0]["keys"]
    seed["providers"][0]["keys"] = [dict(keys[1], primary=True)]  # prod-1 stays primary in DB

    with pytest.raises(ConfigError) as exc:
        config_import(data=seed)

    assert exc.value.errors == [
        "providers[0] (openai-production).keys: keys[0] (prod-2) is primary, but so is key "
        "'prod-1', which is not in the file (list it with primary: false)"
    ]


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("providers:\n  - name: a\n    type: mock\n    timeout: 5\n    timeout: 6\n")
    assert "duplicate key 'timeout'" in _import_file(path)
    assert Provider.objects.count() == 0


# --- virtual key strength --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("a", "1 characters, at least 32"),
        ("sk-gw-short-key-0006", "20 characters, at least 32"),
        ("a" * 40, "too little variety"),
        ("abababababababababababababababab12", "too little variety"),
    ],
)
def test_weak_virtual_key_is_refused_by_name_without_echoing_it(key: str, why: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config_import(data={"virtual_keys": [{"name": "weak-app", "key": key}]})
    [error] = exc.value.errors
    assert error.startswith("virtual_keys[0] (weak-app).key: too weak (") and why in error
    assert len(key) < 3 or key not in error
    assert not VirtualKey.objects.exists()


def test_weak_key_from_the_environment_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAK_APP_KEY", "password")
    with pytest.raises(ConfigError) as exc:
        config_import(data={"virtual_keys": [{"name": "weak-app", "key": "${WEAK_APP_KEY}"}]})
    assert "virtual_keys[0] (weak-app).key: too weak" in exc.value.errors[0]
    assert "password" not in exc.value.errors[0]


@pytest.mark.parametrize(
    "key",
    [
        "sk-gw-" + "Zq3vT9xL2mN8pR4sW7yB1cF6hJ0kD5gA-_Qe",  # generated shape
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # 32 random bytes, hex
    ],
)
def test_strong_virtual_keys_import(key: str) -> None:
    config_import(data={"virtual_keys": [{"name": "strong-app", "key": key}]})
    assert VirtualKey.objects.get(name="strong-app").key_hash == hash_key(key)
