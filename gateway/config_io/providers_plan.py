"""Planning provider instances and their keys."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from gateway.config_io.base import (
    REDACTED_NEW,
    Checker,
    Item,
    Plan,
    ProviderItem,
    apply_values,
    diff_into,
    snapshot,
)
from gateway.config_io.schema import (
    KEY_FIELDS,
    PROVIDER_EXTRA,
    PROVIDER_FIELDS,
    REDACTED,
    Field,
    entry_label,
    parse_entry,
)
from providers.aws import AWS_PARTS, credentials_compose, credentials_split
from providers.models import Provider, ProviderKeyCredential
from providers.selectors import provider_keys_by_name
from providers.services import (
    ENV_MISSING,
    ENV_REFUSED,
    PRIMARY_ELSEWHERE,
    PRIMARY_TWICE,
    ErrorDict,
    ProviderInvalid,
    provider_validate,
)


def plan_providers(
    plan: Plan, entries: list[Any], check: Checker
) -> tuple[dict[str, Provider], set[str]]:
    """Plan providers and their keys; return providers by name and names of broken entries.

    Each instance is checked with its keys by ``providers.services.provider_validate`` (the
    checks every write of an instance goes through); its errors are reported in file terms.
    """
    existing = {p.name: p for p in Provider.objects.all()}
    stored_keys = provider_keys_by_name()
    seen: dict[str, str] = {}
    broken: set[str] = set()
    for i, entry in enumerate(entries):
        label = entry_label(i, "providers", entry, "name")
        values = parse_entry(entry, PROVIDER_FIELDS, label, check.errors, extra=PROVIDER_EXTRA)
        if values is None:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                broken.add(entry["name"])  # so mappings naming it add no second error
            continue
        name = values["name"]
        if name in seen:
            check.errors.append(f"{label}.name: duplicate provider name (also {seen[name]})")
            continue
        seen[name] = label
        obj = existing.get(name) or Provider()
        item = ProviderItem(obj=obj, label=name, is_new=obj.pk is None)
        before = snapshot(obj, PROVIDER_FIELDS)
        apply_values(obj, PROVIDER_FIELDS, values)
        obj.custom_headers = _unredact_headers(obj.custom_headers, before, label, check)
        stored = {} if item.is_new else stored_keys.get(obj.pk, {})
        positions = _plan_keys(item, values.get("keys"), stored, label, check)
        try:
            provider_validate(provider=obj, keys=[k.obj for k in item.keys], environ=check.environ)
        except ProviderInvalid as exc:
            _report_invalid(exc, label, positions, check)
        diff_into(item, before, PROVIDER_FIELDS)
        for key, key_before in zip(item.keys, positions.values(), strict=True):
            diff_into(key, key_before, KEY_FIELDS)
        listed = {k.obj.key_name for k in item.keys}
        plan.left.extend(("key", f"{name}/{k}") for k in stored if k not in listed)
        plan.providers.append(item)
    plan.left.extend(("provider", n) for n in existing if n not in seen and n not in broken)
    by_name = {item.obj.name: item.obj for item in plan.providers}
    return {**existing, **by_name}, broken


def _unredact_headers(headers: Any, before: dict[str, Any], label: str, check: Checker) -> Any:
    """Replace ``***`` header values with the stored ones (export redacts secret headers)."""
    if not isinstance(headers, dict):
        return headers
    stored = {str(k).lower(): v for k, v in (before.get("custom_headers") or {}).items()}
    result = dict(headers)
    for name, value in headers.items():
        if value == REDACTED:
            if name.lower() in stored:
                result[name] = stored[name.lower()]
            else:
                check.errors.append(f"{label}.custom_headers.{name}: {REDACTED_NEW} value")
    return result


def _plan_keys(
    provider: ProviderItem,
    entries: Any,
    stored: dict[str, ProviderKeyCredential],
    label: str,
    check: Checker,
) -> dict[int, dict[str, Any]]:
    """Add the file's keys to ``provider.keys``; return each one's file index and old values.

    Only the file's own rules are checked here (structure, duplicate names, ``***``); the
    keys' invariants are checked with their instance in :func:`plan_providers`.
    """
    positions: dict[int, dict[str, Any]] = {}
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        check.errors.append(f"{label}.keys: must be a list")
        return positions
    seen: dict[str, str] = {}
    for j, entry in enumerate(entries):
        klabel = f"{label}.keys[{j}]"
        values = parse_entry(entry, KEY_FIELDS, klabel, check.errors)
        if values is None:
            continue
        name = values["name"]
        if name in seen:
            check.errors.append(f"{klabel}.name: duplicate key name (also {seen[name]})")
            continue
        seen[name] = f"keys[{j}]"
        obj = stored.get(name) or ProviderKeyCredential()
        item: Item[ProviderKeyCredential] = Item(
            obj=obj, label=f"{provider.obj.name}/{name}", is_new=obj.pk is None
        )
        before = snapshot(obj, KEY_FIELDS)
        apply_values(obj, KEY_FIELDS, values)
        obj.provider = provider.obj
        _aws_credentials(obj, values, before, item.is_new, klabel, check)
        if obj.api_key == REDACTED:
            if item.is_new:
                check.errors.append(f"{klabel}.api_key: {REDACTED_NEW}")
            else:
                obj.api_key = before["api_key"]
        positions[j] = before
        provider.keys.append(item)
    return positions


def _report_invalid(
    exc: ProviderInvalid, label: str, positions: dict[int, dict[str, Any]], check: Checker
) -> None:
    """Word the service's errors in file terms: entry, file path, and the file's own hints."""
    _report_errors(exc.provider_errors, label, PROVIDER_FIELDS, check)
    files = list(positions)  # index into the service's keys -> index into the file's keys

    def key_label(index: int) -> str:
        return f"keys[{files[index]}] ({exc.key_objects[index].key_name})"

    for index, errors in exc.key_errors.items():
        klabel = f"{label}.keys[{files[index]}]"
        rest: ErrorDict = {}
        for field, field_errors in errors.items():
            for error in field_errors:
                params = error.params or {}
                if error.code == PRIMARY_TWICE:
                    check.errors.append(
                        f"{klabel}.primary: only one primary key per instance"
                        f" ({key_label(int(params['first']))} is primary too)"
                    )
                elif error.code == PRIMARY_ELSEWHERE:
                    check.errors.append(
                        f"{label}.keys: {key_label(index)} is primary, but so is key"
                        f" {params['key_name']!r}, which is not in the file"
                        " (list it with primary: false)"
                    )
                else:
                    rest.setdefault(field, []).append(error)
        _report_errors(rest, klabel, KEY_FIELDS, check)


def _report_errors(
    errors: ErrorDict, label: str, fields: tuple[Field, ...], check: Checker
) -> None:
    rest: ErrorDict = {}
    for field, field_errors in errors.items():
        for error in field_errors:
            params = error.params or {}
            if error.code in (ENV_MISSING, ENV_REFUSED) and "header" in params:
                where = f"{label}.custom_headers.{params['header']}"
                check.errors.append(f"{where}: {params['detail']}")
            else:
                rest.setdefault(field, []).append(error)
    if rest:
        check.model_errors(ValidationError(rest), label, fields)


def _aws_credentials(
    obj: ProviderKeyCredential,
    values: dict[str, Any],
    before: dict[str, Any],
    is_new: bool,
    klabel: str,
    check: Checker,
) -> None:
    """Compose a Bedrock key's ``access_key_id``/``secret_access_key``/``session_token`` into
    its stored ``api_key``; an exported ``***`` part keeps the stored part."""
    given = {name: values[name] for name in AWS_PARTS if values.get(name)}
    if not given:
        return
    if values.get("api_key"):
        check.errors.append(f"{klabel}: give api_key or the AWS credential fields, not both")
        return
    stored = credentials_split(str(before.get("api_key") or ""))
    parts: list[str] = []
    for name in AWS_PARTS:
        value = str(given.get(name) or "")
        if value == REDACTED:
            if is_new or stored is None:
                check.errors.append(f"{klabel}.{name}: {REDACTED_NEW}")
                return
            value = getattr(stored, name)
        if not value and name != "session_token":
            check.errors.append(f"{klabel}.{name}: is required with the other AWS credentials")
            return
        parts.append(value)
    obj.api_key = credentials_compose(*parts)
