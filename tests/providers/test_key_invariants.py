"""Invariants of provider instances and keys, in ``clean()`` and in the database."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from providers.models import Provider, ProviderKeyCredential
from providers.validators import validate_custom_headers, validate_header_list

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider() -> Provider:
    return Provider.objects.create(name="openai-a", provider_type="openai")


def _key(provider: Provider, name: str = "k", **kwargs: object) -> ProviderKeyCredential:
    return ProviderKeyCredential(provider=provider, key_name=name, api_key="sk-x", **kwargs)


@pytest.mark.parametrize("group", [0, 1, 32])
def test_account_group_within_bounds_is_valid(provider: Provider, group: int) -> None:
    _key(provider, account_group=group).full_clean()


@pytest.mark.parametrize("group", [33, 40, -1])
def test_account_group_out_of_bounds_fails_clean(provider: Provider, group: int) -> None:
    with pytest.raises(ValidationError) as exc:
        _key(provider, account_group=group).full_clean()
    assert "account_group" in exc.value.message_dict
    if group > 32:
        assert "account group must be between 0 and 32" in exc.value.message_dict["account_group"]


def test_account_group_check_constraint_holds_without_clean(provider: Provider) -> None:
    key = _key(provider)
    key.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderKeyCredential.objects.filter(pk=key.pk).update(account_group=40)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderKeyCredential.objects.bulk_create([_key(provider, "bulk", account_group=33)])
    assert ProviderKeyCredential.objects.get(pk=key.pk).account_group == 0
    ProviderKeyCredential.objects.filter(pk=key.pk).update(account_group=32)  # the bound is ok


def test_one_primary_key_per_instance_in_clean(provider: Provider) -> None:
    _key(provider, "a", is_primary=True).save()
    second = _key(provider, "b", is_primary=True)
    with pytest.raises(ValidationError) as exc:
        second.full_clean()
    assert "this instance already has a primary key" in exc.value.message_dict["is_primary"]
    # Not primary: fine. Primary of another instance: fine.
    _key(provider, "c").full_clean()
    other = Provider.objects.create(name="openai-b", provider_type="openai")
    _key(other, "a", is_primary=True).full_clean()


def test_one_primary_key_per_instance_in_the_database(provider: Provider) -> None:
    _key(provider, "a", is_primary=True).save()
    b = _key(provider, "b")
    b.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderKeyCredential.objects.filter(pk=b.pk).update(is_primary=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderKeyCredential.objects.bulk_create([_key(provider, "c", is_primary=True)])
    # Many non-primary keys are fine (the unique index is partial).
    ProviderKeyCredential.objects.bulk_create([_key(provider, "d"), _key(provider, "e")])
    assert ProviderKeyCredential.objects.filter(provider=provider, is_primary=True).count() == 1


def test_key_names_are_unique_per_instance(provider: Provider) -> None:
    _key(provider, "a").save()
    with pytest.raises(ValidationError):
        _key(provider, "a").full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        _key(provider, "a").save()


def test_azure_needs_api_version() -> None:
    azure = Provider(name="azure", provider_type="azure_openai", base_url="https://x.azure.com")
    with pytest.raises(ValidationError) as exc:
        azure.full_clean()
    assert exc.value.message_dict["api_version"] == ["Azure OpenAI instances need an api_version"]
    azure.api_version = "2024-10-21"
    azure.full_clean()


def test_types_without_default_url_need_base_url() -> None:
    with pytest.raises(ValidationError) as exc:
        Provider(name="compat", provider_type="openai_compatible").full_clean()
    assert "base_url" in exc.value.message_dict


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Bad\r\nInjected": "1"},
        {"X-Bad": "x\r\nInjected: 1"},
        {"X-Bad": "x\nInjected: 1"},
        {"X-Nul": "a\x00b"},
        {"Bad Name": "1"},
        {"X-Num": 5},
        {"X-A": "1", "x-a": "2"},
    ],
)
def test_injection_and_malformed_headers_are_rejected(headers: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        validate_custom_headers(headers)
    with pytest.raises(ValidationError) as exc:
        Provider(name="p", provider_type="openai", custom_headers=headers).full_clean()
    assert "custom_headers" in exc.value.message_dict


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "content-length",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "TE",
        "Trailer",
        "Upgrade",
        "Proxy-Connection",
    ],
)
def test_gateway_owned_headers_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError, match="managed by the gateway"):
        validate_custom_headers({name: "x"})


def test_ordinary_headers_and_references_are_accepted() -> None:
    Provider(
        name="p",
        provider_type="openai",
        custom_headers={"X-Cost-Center": "${COST_CENTER}", "X-Environment": "production"},
        forward_headers=["X-Request-Id"],
    ).full_clean()


@pytest.mark.parametrize("name", ["Authorization", "x-api-key", "Cookie", "Host"])
def test_credential_headers_are_never_forwarded(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_header_list([name])
