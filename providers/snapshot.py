"""Immutable, request-ready views of provider instances and their keys.

Built once per configuration version (``${VAR}`` substituted, secrets decrypted) so that the
request path never touches the database or the cipher.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from providers.envsubst import EnvReferenceError, substitute
from providers.models import Provider, ProviderKeyCredential
from providers.secrets import Undecryptable, tolerant_decryption

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """One usable key of an instance. ``api_key`` is plaintext: never log or render it."""

    id: int
    name: str
    api_key: str = field(repr=False)
    account_group: int
    is_primary: bool
    base_url: str  # already resolved: the key's override or the instance's
    organization: str


@dataclass(frozen=True, slots=True)
class ProviderSnapshot:
    """One provider instance as the request path sees it.

    ``keys`` holds enabled keys only, primary first. ``error`` is set when the instance cannot
    be used as configured (a ``${VAR}`` it needs is unset); such an instance is skipped.
    """

    id: int
    name: str
    provider_type: str
    base_url: str
    api_version: str
    timeout: float
    connect_timeout: float
    max_retries: int
    custom_headers: tuple[tuple[str, str], ...]
    forward_headers: frozenset[str]
    keys: tuple[KeySnapshot, ...]
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    health_check_probe: str = "models"
    health_check_model: str = ""
    health_check_interval: int = 300
    is_enabled: bool = True
    error: str = ""
    #: Names of enabled keys left out because no ``FIELD_ENCRYPTION_KEYS`` entry decrypts them.
    undecryptable_keys: tuple[str, ...] = ()
    #: ``anthropic-beta`` flags clients may pass (providers.betas); None: the default list.
    anthropic_beta_allow: tuple[str, ...] | None = None
    preset: str = ""  # openai_compatible only: a name in providers.presets.PRESETS
    region: str = ""  # bedrock only: the AWS region requests are signed for


def _resolve(value: str, env: Mapping[str, str]) -> str:
    return substitute(value, env) if "${" in value else value


def provider_snapshot_build(
    provider: Provider,
    keys: list[ProviderKeyCredential],
    *,
    env: Mapping[str, str] | None = None,
) -> ProviderSnapshot:
    """Snapshot ``provider`` with ``keys`` (pass them prefetched: this runs no query)."""
    environ = os.environ if env is None else env
    error = ""
    base = provider.effective_base_url
    headers: list[tuple[str, str]] = []
    key_snaps: list[KeySnapshot] = []
    undecryptable: list[str] = []
    region = provider.region
    try:
        base = _resolve(base, environ).rstrip("/")
        region = _resolve(provider.region, environ)
        for name, value in (provider.custom_headers or {}).items():
            if isinstance(value, Undecryptable):
                # Sending the instance without it could bill or route the wrong account.
                error = f"custom header {name} cannot be decrypted with FIELD_ENCRYPTION_KEYS"
                logger.warning(
                    "provider %s (id %s) unusable: %s", provider.name, provider.id, error
                )
                continue
            headers.append((name, _resolve(str(value), environ)))
        ordered = sorted((k for k in keys if k.is_enabled), key=lambda k: (not k.is_primary, k.id))
        for key in ordered:
            if isinstance(key.api_key, Undecryptable):
                # Only this key is unusable: the instance fails over to its other keys.
                undecryptable.append(key.key_name)
                logger.warning(
                    "provider %s (id %s): key %s (id %s) cannot be decrypted with "
                    "FIELD_ENCRYPTION_KEYS; left out",
                    provider.name,
                    provider.id,
                    key.key_name,
                    key.id,
                )
                continue
            key_snaps.append(
                KeySnapshot(
                    id=key.id,
                    name=key.key_name,
                    api_key=_resolve(key.api_key or "", environ),
                    account_group=key.account_group,
                    is_primary=key.is_primary,
                    base_url=_resolve(key.base_url, environ).rstrip("/") if key.base_url else base,
                    organization=key.organization,
                )
            )
    except EnvReferenceError as exc:
        # Unset, or refused by the policy (providers.envsubst.refusal): only this instance is
        # unusable. The name of the variable is not a secret; its value never reaches this.
        logger.warning("provider %s (id %s) unusable: %s", provider.name, provider.id, exc)
        error = f"{error}; {exc}" if error else str(exc)
    return ProviderSnapshot(
        id=provider.id,
        name=provider.name,
        provider_type=provider.provider_type,
        base_url=base,
        api_version=provider.api_version,
        timeout=float(provider.timeout),
        connect_timeout=float(provider.connect_timeout),
        max_retries=int(provider.max_retries),
        custom_headers=tuple(headers),
        forward_headers=frozenset(h.lower() for h in provider.forward_headers or []),
        keys=tuple(key_snaps),
        requests_per_minute=provider.requests_per_minute,
        tokens_per_minute=provider.tokens_per_minute,
        health_check_probe=provider.health_check_probe,
        health_check_model=provider.health_check_model,
        health_check_interval=provider.health_check_interval,
        is_enabled=provider.is_enabled,
        error=error,
        undecryptable_keys=tuple(undecryptable),
        anthropic_beta_allow=(
            tuple(provider.anthropic_beta_allow)
            if isinstance(provider.anthropic_beta_allow, list)
            else None
        ),
        preset=provider.preset,
        region=region,
    )


def provider_snapshots_all() -> dict[int, ProviderSnapshot]:
    """Every instance (enabled or not), keyed by ID: two queries whatever the count."""
    # One undecryptable key or custom header value must not fail the whole table.
    with tolerant_decryption():
        providers = list(Provider.objects.all())
    by_provider: dict[int, list[ProviderKeyCredential]] = {p.id: [] for p in providers}
    with tolerant_decryption():
        for key in ProviderKeyCredential.objects.all():
            by_provider.setdefault(key.provider_id, []).append(key)
    return {p.id: provider_snapshot_build(p, by_provider[p.id]) for p in providers}
