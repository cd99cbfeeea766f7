"""Which Redis the gateway talks to: one server, a Sentinel-watched master, or a cluster.

``REDIS_URL`` is read here, once at startup by the settings (a bad value stops the process
with the setting's name) and again by :mod:`providers.redis_conn` when it builds clients:

* ``redis://`` / ``rediss://`` (TLS): one server (``/db`` as usual);
* ``redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/db]``: the master that
  the Sentinels name ``MASTER`` (the password is the master's; Sentinels are asked without);
* ``REDIS_CLUSTER=1`` with a ``redis://``/``rediss://`` URL naming any seed node: a Redis
  Cluster (database 0 only, as the cluster has no others).

Nothing here connects; no error message repeats the URL (it may hold a password).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss")

Mode = Literal["single", "sentinel", "cluster"]


@dataclass(frozen=True, slots=True)
class RedisTopology:
    """A parsed ``REDIS_URL`` (plus ``REDIS_CLUSTER``)."""

    mode: Mode
    #: single and cluster: the URL redis-py's ``from_url`` takes; sentinel: empty.
    url: str = ""
    #: sentinel only: the Sentinels' addresses, the master's name, database and credentials.
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def _address(item: str, setting: str) -> tuple[str, int]:
    host, sep, port = item.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ImproperlyConfigured(f"{setting}: Sentinel address {item.strip()!r} is not host:port")
    return host.strip("[]"), int(port)


def sentinel_url(sentinels: list[str], master: str) -> str:
    """``REDIS_SENTINELS`` + ``REDIS_SENTINEL_MASTER`` written as one ``redis+sentinel://`` URL."""
    if not master:
        raise ImproperlyConfigured("REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is empty")
    for item in sentinels:
        _address(item, "REDIS_SENTINELS")
    return f"{SENTINEL_SCHEME}://{','.join(s.strip() for s in sentinels)}/{master}"


def _sentinel(url: str, setting: str) -> RedisTopology:
    rest = url.split("://", 1)[1]
    netloc, _, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    if not at:
        hosts = netloc
    if not hosts:
        raise ImproperlyConfigured(f"{setting}: redis+sentinel:// names no Sentinel host:port")
    addresses = tuple(_address(item, setting) for item in hosts.split(","))
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ImproperlyConfigured(
            f"{setting}: redis+sentinel:// needs the master's name: "
            "redis+sentinel://host:port[,host:port]/MASTER[/db]"
        )
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ImproperlyConfigured(f"{setting}: expected .../MASTER[/db] after the Sentinels")
    username = password = None
    if credentials:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    return RedisTopology(
        mode="sentinel",
        sentinels=addresses,
        master=unquote(parts[0]),
        db=int(parts[1]) if len(parts) == 2 else 0,
        username=username,
        password=password,
    )


def redis_topology(url: str, *, cluster: bool, setting: str = "REDIS_URL") -> RedisTopology | None:
    """The topology ``url`` names; None when empty (no Redis). Raises ImproperlyConfigured."""
    if not url:
        if cluster:
            raise ImproperlyConfigured("REDIS_CLUSTER=1 needs REDIS_URL (any node of the cluster)")
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == SENTINEL_SCHEME:
        if cluster:
            raise ImproperlyConfigured(
                f"REDIS_CLUSTER=1 cannot be combined with a {SENTINEL_SCHEME}:// {setting}"
            )
        return _sentinel(url, setting)
    if scheme not in PLAIN_SCHEMES:
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ImproperlyConfigured(
            f"{setting}: unsupported scheme ({shown}); use redis://, rediss:// or "
            f"{SENTINEL_SCHEME}://host:port[,host:port]/MASTER[/db]"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ImproperlyConfigured(f"{setting}: not a valid {scheme}:// URL") from None
    if not parts.hostname:
        raise ImproperlyConfigured(f"{setting}: {scheme}:// URL names no host")
    if cluster and parts.path.strip("/") not in ("", "0"):
        raise ImproperlyConfigured(f"{setting}: a Redis Cluster has only database 0")
    return RedisTopology(mode="cluster" if cluster else "single", url=url)
