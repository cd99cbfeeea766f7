"""providers.services: the one write path of instances and keys, judged by what is stored."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import ProtectedError
from django.utils import timezone

from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential
from providers.services import (
    API_KEY_REQUIRED,
    ENV_MISSING,
    PRIMARY_ELSEWHERE,
    PRIMARY_TWICE,
    STORED_KEY_WITHOUT_API_KEY,
    ErrorDict,
    ProviderInvalid,
    provider_delete,
    provider_key_delete,
    provider_key_save,
    provider_save,
    provider_validate,
)

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789abcdef-SERVICES"


def _key(name: str, **fields: object) -> ProviderKeyCredential:
    fields.setdefault("api_key", f"sk-{name}-0123456789")
    return ProviderKeyCredential(key_name=name, **fields)


def _stored(**fields: object) -> Provider:
    """An instance with keys a (primary) and b, written through the service."""
    provider = Provider(name=str(fields.pop("name", "openai-a")), provider_type="openai", **fields)
    return provider_save(provider=provider, keys=[_key("a", is_primary=True), _key("b")])


def _codes(errors: ErrorDict) -> dict[str, list[str | None]]:
    return {name: [e.code for e in found] for name, found in errors.items()}


def _raw_api_key(pk: int) -> str:
    """The column as the database stores it, bypassing the field's decryption."""
    table = connection.ops.quote_name(ProviderKeyCredential._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT api_key FROM {table} WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return str(value)


# --- atomicity -----------------------------------------------------------------------------


def test_a_bad_key_leaves_nothing_written() -> None:
    version = config_version_db()
    provider = Provider(name="openai-new", provider_type="openai")
    keys = [_key("good"), _key("bad", account_group=40)]

    with pytest.raises(ProviderInvalid) as exc:
        provider_save(provider=provider, keys=keys)

    assert list(exc.value.key_errors) == [1]
    assert "account_group" in exc.value.key_errors[1]
    assert not Provider.objects.exists() and not ProviderKeyCredential.objects.exists()
    assert config_version_db() == version


def test_a_bad_key_leaves_a_stored_instance_as_it_was() -> None:
    provider = _stored(timeout=90)
    stamp = Provider.objects.get().updated_at
    version = config_version_db()
    provider.timeout = 5
    b = provider.keys.get(key_name="b")
    b.organization = "org-new"

    with pytest.raises(ProviderInvalid):
        provider_save(provider=provider, keys=[b, _key("c", api_key="")])

    stored = Provider.objects.get()
    assert (stored.timeout, stored.updated_at) == (90, stamp)
    assert ProviderKeyCredential.objects.get(key_name="b").organization == ""
    assert set(ProviderKeyCredential.objects.values_list("key_name", flat=True)) == {"a", "b"}
    assert config_version_db() == version


# --- the configuration version ---------------------------------------------------------------


def test_one_save_bumps_the_config_version_once() -> None:
    version = config_version_db()
    provider_save(
        provider=Provider(name="openai-a", provider_type="openai"),
        keys=[_key("a", is_primary=True), _key("b"), _key("c")],
    )
    assert config_version_db() == version + 1


def test_a_save_that_changes_nothing_writes_and_bumps_nothing() -> None:
    provider = _stored()
    stamps = sorted(ProviderKeyCredential.objects.values_list("key_name", "updated_at"))
    version = config_version_db()

    provider_save(provider=provider, keys=list(provider.keys.all()))

    assert config_version_db() == version
    assert sorted(ProviderKeyCredential.objects.values_list("key_name", "updated_at")) == stamps


def test_deletes_bump_the_config_version_once() -> None:
    provider = _stored()
    version = config_version_db()
    provider_key_delete(key=provider.keys.get(key_name="b"))
    assert config_version_db() == version + 1
    provider_delete(provider=provider)  # the instance and its remaining key
    assert config_version_db() == version + 2
    assert not ProviderKeyCredential.objects.exists()


def test_an_instance_with_usage_is_not_deleted() -> None:
    from gateway.usage.models import UsageRecord  # a test may reach up; providers never does

    provider = _stored()
    UsageRecord.objects.create(
        request_id="r1",
        created_at=timezone.now(),
        endpoint="chat",
        provider=provider,
        status_code=200,
    )
    version = config_version_db()
    with pytest.raises(ProtectedError):
        provider_delete(provider=provider)
    assert ProviderKeyCredential.objects.count() == 2
    assert config_version_db() == version


# --- one primary key per instance ----------------------------------------------------------


def test_two_primary_keys_in_one_save_are_refused() -> None:
    provider = Provider(name="openai-a", provider_type="openai")
    keys = [_key("a", is_primary=True), _key("b"), _key("c", is_primary=True)]

    with pytest.raises(ProviderInvalid) as exc:
        provider_save(provider=provider, keys=keys)

    assert _codes(exc.value.key_errors[2]) == {"is_primary": [PRIMARY_TWICE]}
    assert exc.value.key_errors[2]["is_primary"][0].params == {"first": 0}
    assert not Provider.objects.exists()


def test_the_primary_flag_moves_between_keys_in_one_save() -> None:
    provider = _stored()
    a, b = provider.keys.get(key_name="a"), provider.keys.get(key_name="b")
    a.is_primary, b.is_primary = False, True
    # Listed promoted first: the service still demotes first (the partial unique index).
    provider_save(provider=provider, keys=[b, a])
    assert list(provider.keys.filter(is_primary=True).values_list("key_name", flat=True)) == ["b"]


def test_a_primary_key_conflicts_with_a_stored_primary_left_out() -> None:
    provider = _stored()
    with pytest.raises(ProviderInvalid) as exc:
        provider_save(provider=provider, keys=[_key("c", is_primary=True)])
    error = exc.value.key_errors[0]["is_primary"][0]
    assert (error.code, error.params) == (PRIMARY_ELSEWHERE, {"key_name": "a"})
    assert not ProviderKeyCredential.objects.filter(key_name="c").exists()


def test_deleting_the_primary_makes_room_for_a_new_one() -> None:
    provider = _stored()
    a = provider.keys.get(key_name="a")
    provider_save(provider=provider, keys=[_key("c", is_primary=True)], delete_keys=[a])
    keys = dict(provider.keys.values_list("key_name", "is_primary"))
    assert keys == {"b": False, "c": True}


# --- api keys, references, model invariants ------------------------------------------------


def test_keys_of_a_new_keyed_instance_need_an_api_key() -> None:
    with pytest.raises(ProviderInvalid) as exc:
        provider_save(
            provider=Provider(name="openai-a", provider_type="openai"), keys=[_key("a", api_key="")]
        )
    assert _codes(exc.value.key_errors[0]) == {"api_key": [API_KEY_REQUIRED]}
    assert exc.value.key_errors[0]["api_key"][0].messages == ["openai keys need an api_key"]
    # Keyless types need none.
    provider_save(
        provider=Provider(name="local", provider_type="ollama", base_url="http://ollama:11434"),
        keys=[_key("a", api_key="")],
    )
    assert ProviderKeyCredential.objects.get().api_key == ""


def test_switching_to_a_keyed_type_needs_values_for_stored_keyless_keys() -> None:
    provider = provider_save(
        provider=Provider(name="local", provider_type="ollama", base_url="http://ollama:11434"),
        keys=[_key("a", api_key="")],
    )
    provider.provider_type = "openai_compatible"
    with pytest.raises(ProviderInvalid) as exc:
        provider_save(provider=provider)
    assert _codes(exc.value.provider_errors) == {"provider_type": [STORED_KEY_WITHOUT_API_KEY]}
    assert Provider.objects.get().provider_type == "ollama"


def test_unset_references_are_refused_unless_the_caller_opts_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GW_SVC_UNSET", raising=False)
    provider = Provider(
        name="openai-a", provider_type="openai", custom_headers={"X-Team": "${GW_SVC_UNSET}"}
    )
    keys = [_key("a", api_key="${GW_SVC_UNSET}")]
    with pytest.raises(ProviderInvalid) as exc:
        provider_validate(provider=provider, keys=keys)
    header_error = exc.value.provider_errors["custom_headers"][0]
    assert (header_error.code, header_error.params) == (
        ENV_MISSING,
        {
            "name": "GW_SVC_UNSET",
            "header": "X-Team",
            "detail": "environment variable GW_SVC_UNSET is not set",
        },
    )
    assert header_error.messages == ["X-Team: environment variable GW_SVC_UNSET is not set"]
    assert _codes(exc.value.key_errors[0]) == {"api_key": [ENV_MISSING]}
    # Checked against the given environment, or not at all.
    provider_validate(provider=provider, keys=keys, environ={"GW_SVC_UNSET": "x"})
    provider_save(provider=provider, keys=keys, check_references=False)
    assert ProviderKeyCredential.objects.get().api_key == "${GW_SVC_UNSET}"


def test_model_invariants_are_reported_by_field() -> None:
    provider = Provider(name="az", provider_type="azure_openai", base_url="https://x.example")
    with pytest.raises(ProviderInvalid) as exc:
        provider_save(provider=provider, keys=[_key("a", base_url="ftp://nope")])
    assert "api_version" in exc.value.provider_errors
    assert "base_url" in exc.value.key_errors[0]
    # As a plain ValidationError: the instance's fields, and keys by name.
    assert set(exc.value.message_dict) == {"api_version", "keys"}
    assert exc.value.message_dict["keys"][0].startswith("a: base_url: ")


# --- secrets at rest and single-key saves -----------------------------------------------------


def test_api_keys_are_encrypted_at_rest() -> None:
    provider_save(
        provider=Provider(name="openai-a", provider_type="openai"),
        keys=[_key("a", api_key=SECRET)],
    )
    key = ProviderKeyCredential.objects.get()
    raw = _raw_api_key(key.pk)
    assert SECRET not in raw and raw.startswith("gAAAA")  # a Fernet token
    assert key.api_key == SECRET


def test_a_single_key_save_checks_the_key_against_its_instance() -> None:
    provider = _stored()
    version = config_version_db()
    key = provider_key_save(key=_key("c", provider=provider, api_key=SECRET))
    assert config_version_db() == version + 1
    assert SECRET not in _raw_api_key(key.pk)
    with pytest.raises(ProviderInvalid) as exc:
        provider_key_save(key=_key("d", provider=provider, is_primary=True))
    assert _codes(exc.value.key_errors[0]) == {"is_primary": [PRIMARY_ELSEWHERE]}
    assert config_version_db() == version + 1
