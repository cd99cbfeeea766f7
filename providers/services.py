"""The one write path for provider instances and their key credentials.

The admin, the admin REST API and configuration import all save instances and keys through
these functions, so the same invariants hold whichever door a change comes through:

- every model's ``full_clean()`` (field validators and ``clean()``: header rules, Azure's
  ``api_version``, base URLs, account groups 0-32, key names unique per instance);
- at most one primary key per instance, judged on the keys as they will be stored (a primary
  flag may move between keys in one save);
- keys of keyed provider types carry an ``api_key``, judged against the instance's new type;
- every ``${VAR}`` reference is set in the environment (callers may opt out, see
  :func:`provider_validate`).

A save validates first and writes nothing when anything is invalid; it writes inside one
``transaction.atomic()`` and bumps the configuration version once. Rows whose values equal the
stored ones are not written at all. API keys are encrypted at rest by their model field
(:class:`providers.secrets.EncryptedTextField`); nothing here handles plaintext beyond
comparing it with the stored value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction

from providers.aws import credentials_problem
from providers.config_version import config_version_batch
from providers.envsubst import RefusedEnvVar, reference_error, references
from providers.models import Provider, ProviderKeyCredential
from providers.selectors import provider_keys_by_name
from providers.types import ProviderType
from providers.validators import service_account_problem

ErrorDict = dict[str, list[ValidationError]]

# Error codes callers may word in their own terms (each error also carries ``params``).
ENV_MISSING = "env_missing"  # params: name, detail, and header for a custom header value
ENV_REFUSED = "env_refused"  # params: name, detail, header (as ENV_MISSING): see envsubst.refusal
API_KEY_REQUIRED = "api_key_required"  # params: provider_type
SERVICE_ACCOUNT_INVALID = "service_account_invalid"  # params: problem
PRIMARY_TWICE = "primary_twice"  # params: first (index into ``keys`` of the first primary)
PRIMARY_ELSEWHERE = "primary_elsewhere"  # params: key_name (a stored key not in ``keys``)
KEY_NAME_TWICE = "key_name_twice"  # params: first (index into ``keys``)
STORED_KEY_WITHOUT_API_KEY = "stored_key_without_api_key"  # params: provider_type, key_name
AWS_CREDENTIALS_INVALID = "aws_credentials_invalid"

# Columns the database and ``auto_now`` own: never compared, never set from a caller.
_AUTO_FIELDS = frozenset({"id", "created_at", "updated_at"})


class ProviderInvalid(ValidationError):
    """An instance or one of its keys breaks an invariant; nothing was written.

    ``provider_errors`` holds the instance's errors by model field; ``key_errors`` the errors
    of ``key_objects[i]`` (the keys given to the service) by model field. Errors keep their
    ``code`` and ``params``. Read as a plain ``ValidationError`` it names the instance's fields plus
    ``keys``, one message per key error.
    """

    def __init__(
        self,
        *,
        provider_errors: ErrorDict,
        key_errors: dict[int, ErrorDict],
        keys: Sequence[ProviderKeyCredential],
    ) -> None:
        self.provider_errors = provider_errors
        self.key_errors = key_errors
        # Not "keys": dict(exc), which message_dict uses, would take it for a mapping.
        self.key_objects = list(keys)
        summary: dict[str, list[ValidationError]] = {
            name: list(errors) for name, errors in provider_errors.items()
        }
        for index, errors in sorted(key_errors.items()):
            label = keys[index].key_name or f"keys[{index}]"
            for name, field_errors in errors.items():
                summary.setdefault("keys", []).extend(
                    ValidationError(f"{label}: {name}: {message}")
                    for error in field_errors
                    for message in error.messages
                )
        super().__init__(summary)


def provider_validate(
    *,
    provider: Provider,
    keys: Sequence[ProviderKeyCredential] = (),
    delete_keys: Sequence[ProviderKeyCredential] = (),
    check_references: bool = True,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Check ``provider`` and its keys as a save would store them; raise :class:`ProviderInvalid`.

    ``keys`` are new keys and stored keys (of this instance) carrying their new values; stored
    keys neither in ``keys`` nor in ``delete_keys`` count as they are stored. Each key's
    ``provider`` is set to ``provider``. ``${VAR}`` references must be set in ``environ``
    (default ``os.environ``) unless ``check_references`` is false. Writes nothing.
    """
    env = os.environ if environ is None else environ
    provider_errors = _instance_errors(provider, env if check_references else None)
    key_errors, stored_errors = _keys_errors(
        provider, keys, delete_keys, env if check_references else None
    )
    for name, errors in stored_errors.items():
        provider_errors.setdefault(name, []).extend(errors)
    if provider_errors or key_errors:
        raise ProviderInvalid(provider_errors=provider_errors, key_errors=key_errors, keys=keys)


def provider_save(
    *,
    provider: Provider,
    keys: Sequence[ProviderKeyCredential] = (),
    delete_keys: Sequence[ProviderKeyCredential] = (),
    check_references: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Provider:
    """Create or update ``provider``, write ``keys`` and delete ``delete_keys``, as one change.

    Validates everything first (:func:`provider_validate`, same arguments) and raises
    :class:`ProviderInvalid` without writing. Then, in one transaction: the instance is inserted
    or its changed columns updated, ``delete_keys`` are deleted, and ``keys`` are inserted or
    updated (unchanged rows are not written). The configuration version moves once, and only
    when something was written. Stored keys not listed are left alone. Returns ``provider``,
    saved (a new instance now has its ID, and so does every new key).
    """
    with transaction.atomic(), config_version_batch():
        provider_validate(
            provider=provider,
            keys=keys,
            delete_keys=delete_keys,
            check_references=check_references,
            environ=environ,
        )
        stored = Provider.objects.filter(pk=provider.pk).first() if provider.pk else None
        _save_changed(provider, stored)
        for key in delete_keys:
            if key.pk is not None:
                key.delete()
        _write_keys(provider, keys)
    return provider


def provider_delete(*, provider: Provider) -> None:
    """Delete ``provider`` and its keys; the configuration version moves once.

    Raises ``django.db.models.ProtectedError`` (and deletes nothing) while usage records refer
    to the instance: their cost history needs it, so callers offer disabling instead.
    """
    with transaction.atomic(), config_version_batch():
        provider.delete()


def provider_key_save(
    *,
    key: ProviderKeyCredential,
    check_references: bool = True,
    environ: Mapping[str, str] | None = None,
) -> ProviderKeyCredential:
    """Create or update one key of its instance (``key.provider``), as :func:`provider_save` would.

    Only the key is checked and written; the instance is taken as stored. Raises
    :class:`ProviderInvalid` with the key's errors at index 0.
    """
    provider = key.provider
    env = os.environ if environ is None else environ
    with transaction.atomic(), config_version_batch():
        # Errors about the other stored keys are not this key's: a type change is
        # provider_save's business, and the type does not change here.
        key_errors, _ = _keys_errors(provider, [key], (), env if check_references else None)
        if key_errors:
            raise ProviderInvalid(provider_errors={}, key_errors=key_errors, keys=[key])
        _write_keys(provider, [key])
    return key


def provider_key_delete(*, key: ProviderKeyCredential) -> None:
    """Delete one key; the configuration version moves once."""
    with transaction.atomic(), config_version_batch():
        key.delete()


# --- validation ------------------------------------------------------------------------------


def _instance_errors(provider: Provider, env: Mapping[str, str] | None) -> ErrorDict:
    errors: ErrorDict = {}
    try:
        provider.full_clean()
    except ValidationError as exc:
        _collect(errors, exc)
    if env is not None:
        for name, field_errors in provider_reference_errors(provider=provider, environ=env).items():
            errors.setdefault(name, []).extend(field_errors)
    return errors


def provider_reference_errors(
    *, provider: Provider, environ: Mapping[str, str] | None = None
) -> ErrorDict:
    """Errors of the instance's own ``${VAR}`` references (base URL, custom headers), by field.

    The same check (and message) :func:`provider_validate` applies; for a form that validates
    the instance and its keys in separate steps (the admin).
    """
    env = os.environ if environ is None else environ
    errors: ErrorDict = {}
    _reference_errors(errors, "base_url", provider.base_url, env)
    _reference_errors(errors, "region", provider.region, env)
    if isinstance(provider.custom_headers, dict):
        for header, value in provider.custom_headers.items():
            _reference_errors(errors, "custom_headers", value, env, header=header)
    return errors


def _keys_errors(
    provider: Provider,
    keys: Sequence[ProviderKeyCredential],
    delete_keys: Sequence[ProviderKeyCredential],
    env: Mapping[str, str] | None,
) -> tuple[dict[int, ErrorDict], ErrorDict]:
    """Errors of each key (by index) and errors about stored keys not listed (by field)."""
    key_errors: dict[int, ErrorDict] = {}
    for index, key in enumerate(keys):
        errors = _key_errors(provider, key, env)
        if errors:
            key_errors[index] = errors
    names: dict[str, int] = {}
    primaries: list[int] = []
    for index, key in enumerate(keys):
        if key.key_name in names:
            _add(
                key_errors.setdefault(index, {}),
                "key_name",
                "another key of this instance has the same name",
                KEY_NAME_TWICE,
                first=names[key.key_name],
            )
        names.setdefault(key.key_name, index)
        if key.is_primary:
            primaries.append(index)
    for index in primaries[1:]:
        _add(
            key_errors.setdefault(index, {}),
            "is_primary",
            "only one key of an instance can be primary",
            PRIMARY_TWICE,
            first=primaries[0],
        )
    stored_errors: ErrorDict = {}
    for other in _unlisted_keys(provider, keys, delete_keys):
        if other.is_primary and primaries:
            _add(
                key_errors.setdefault(primaries[0], {}),
                "is_primary",
                "key '%(key_name)s' of this instance is primary too",
                PRIMARY_ELSEWHERE,
                key_name=other.key_name,
            )
        if not other.api_key and provider.needs_key:
            _add(
                stored_errors,
                "provider_type",
                "%(provider_type)s keys need an api_key; key '%(key_name)s' has none",
                STORED_KEY_WITHOUT_API_KEY,
                provider_type=provider.provider_type,
                key_name=other.key_name,
            )
    return key_errors, stored_errors


def _key_errors(
    provider: Provider, key: ProviderKeyCredential, env: Mapping[str, str] | None
) -> ErrorDict:
    key.provider = provider
    errors: ErrorDict = {}
    # The model checks "one primary" against the database, which this save may be about to
    # change (the flag moving between keys); the check over the whole set replaces it.
    wants_primary, key.is_primary = key.is_primary, False
    try:
        # A new instance has no ID yet: its keys' foreign key is set when they are written.
        key.full_clean(exclude={"provider"} if provider.pk is None else None)
    except ValidationError as exc:
        _collect(errors, exc)
    finally:
        key.is_primary = wants_primary
    # The model checks this only for an instance in the database, against its stored type.
    if not key.api_key and provider.needs_key and "api_key" not in errors:
        _add(
            errors,
            "api_key",
            "%(provider_type)s keys need an api_key",
            API_KEY_REQUIRED,
            provider_type=provider.provider_type,
        )
    bedrock = provider.provider_type == ProviderType.BEDROCK
    problem = credentials_problem(key.api_key or "") if bedrock and key.api_key else None
    if problem and "api_key" not in errors:
        _add(errors, "api_key", problem, AWS_CREDENTIALS_INVALID)
    problem = (
        service_account_problem(key.api_key)
        if provider.provider_type == ProviderType.VERTEX_AI and "api_key" not in errors
        else None
    )
    if problem:
        _add(errors, "api_key", "%(problem)s", SERVICE_ACCOUNT_INVALID, problem=problem)
    if env is not None:
        _reference_errors(errors, "api_key", key.api_key, env)
        _reference_errors(errors, "base_url", key.base_url, env)
    return errors


def _unlisted_keys(
    provider: Provider,
    keys: Sequence[ProviderKeyCredential],
    delete_keys: Sequence[ProviderKeyCredential],
) -> list[ProviderKeyCredential]:
    """Stored keys of ``provider`` this save leaves as they are."""
    if provider.pk is None:
        return []
    stored = provider_keys_by_name(provider_ids=[provider.pk]).get(provider.pk, {})
    touched = {k.pk for k in (*keys, *delete_keys) if k.pk is not None}
    return [k for k in stored.values() if k.pk not in touched]


def _reference_errors(
    errors: ErrorDict,
    field: str,
    value: object,
    env: Mapping[str, str],
    *,
    header: str | None = None,
) -> None:
    if not isinstance(value, str):
        return
    for name in references(value):
        error = reference_error(name, env)
        if error is None:
            continue
        code = ENV_REFUSED if isinstance(error, RefusedEnvVar) else ENV_MISSING
        # The message names the variable and why; never its value.
        detail = str(error)
        if header is None:
            _add(errors, field, "%(detail)s", code, name=name, detail=detail)
        else:
            _add(
                errors,
                field,
                "%(header)s: %(detail)s",
                code,
                name=name,
                header=header,
                detail=detail,
            )


def _add(errors: ErrorDict, field: str, message: str, code: str, **params: str | int) -> None:
    errors.setdefault(field, []).append(ValidationError(message, code=code, params=params))


def _collect(errors: ErrorDict, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, field_errors in exc.error_dict.items():
            errors.setdefault(name, []).extend(field_errors)
    else:
        errors.setdefault(NON_FIELD_ERRORS, []).extend(exc.error_list)


# --- writing ---------------------------------------------------------------------------------


def _write_keys(provider: Provider, keys: Sequence[ProviderKeyCredential]) -> None:
    stored = ProviderKeyCredential.objects.in_bulk([k.pk for k in keys if k.pk is not None])
    # Demote before promoting: the partial unique index allows one primary at any moment.
    # Otherwise keep the caller's order, so new keys get IDs (and list order) as listed.
    demoted = [k for k in keys if k.pk in stored and stored[k.pk].is_primary and not k.is_primary]
    for key in demoted + [k for k in keys if k not in demoted]:
        key.provider = provider  # a new instance got its ID just now
        _save_changed(key, stored.get(key.pk))


def _save_changed(obj: models.Model, stored: models.Model | None) -> None:
    """Insert a new row, update only the changed columns of a stored one, else write nothing."""
    if obj.pk is None or stored is None:
        obj.save()
        return
    changed = [
        f.attname
        for f in obj._meta.concrete_fields
        if f.name not in _AUTO_FIELDS and getattr(obj, f.attname) != getattr(stored, f.attname)
    ]
    if changed:
        obj.save(update_fields=[*changed, "updated_at"])
