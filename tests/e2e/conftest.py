"""End-to-end fixtures: the real gateway server process, the fake upstream, config factories.

One gateway process (``manage.py serve``) serves the whole session on the test database; tests
create their configuration with ``transactional_db`` (committed, so the process sees it) and
call ``e2e.publish()``, which stamps a fresh config version and waits until the process has
rebuilt its route table (bounded polling, no fixed sleeps). Tests that need a process with other
settings (Redis, limits) start their own with ``gateway_factory``.

Why a unique version stamp, and why far apart: the test database is flushed between tests,
which also resets the config version row, so two tests creating the same number of rows would
otherwise end at the same version and the process would keep the previous test's table. And
every watched save bumps the row by one: a stamp one above the previous stamp can equal a value
the process already rebuilt at between two saves (stamp N, a tier saved: N+1, polled and
rebuilt; the probe key saved: N+2; stamp N+1), and the process would never rebuild with the
probe key. Stamps a stride apart are values the row never held.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from django.conf import settings
from django.db import connection

from mappings.models import ModelProviderMapping
from providers.config_version import REDIS_KEY
from providers.models import ConfigVersion
from providers.redis_conn import sync_redis
from tests.conftest import free_port
from tests.factories import Instance, make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401

BASE_DIR = Path(settings.BASE_DIR)
# A ${VAR} only the server process has: custom headers referring to it prove the substitution
# happened where the route table is built.
SERVER_ENV_VAR = "GW_E2E_TEAM"
SERVER_ENV_VALUE = "team-from-server-env"
STARTUP_TIMEOUT = 30.0
#: A server is ready once its route table is loaded: an unauthenticated model list is refused.
ROUTE_TABLE_LOADED = ("/v1/models", 401)
SYNC_TIMEOUT = 10.0

#: Larger than the number of watched saves any test makes between two publishes.
_VERSION_STRIDE = 1 << 20
_versions = itertools.count(int(time.time()) * _VERSION_STRIDE, _VERSION_STRIDE)


def subprocess_database_url() -> str:
    """DATABASE_URL of the *test* database (never the development one)."""
    sd = connection.settings_dict
    name = str(sd["NAME"])
    if sd["ENGINE"] == "django.db.backends.sqlite3":
        expected = str(settings.DATABASES["default"].get("TEST", {}).get("NAME") or "")
        assert name == expected and name != ":memory:", f"not the test database file: {name}"
        return f"sqlite:///{Path(name).resolve()}"
    if sd["ENGINE"] == "django.db.backends.postgresql":
        assert name.startswith("test_"), f"not a test database: {name}"
        user = quote(str(sd.get("USER") or ""), safe="")
        password = quote(str(sd.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = sd.get("HOST") or "127.0.0.1"
        port = sd.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{name}"
    raise RuntimeError(f"unsupported engine for e2e tests: {sd['ENGINE']}")


def stall_report(server: GatewayServer, lines: int = 40) -> str:
    """For a failed wait on ``server``: the database's sessions that are not idle (PostgreSQL:
    what each runs and waits on) and the tail of the server's log."""
    parts = []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, wait_event_type, wait_event, now() - xact_start, "
                "left(query, 200) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state <> 'idle'"
            )
            parts += ["database sessions not idle:", *(repr(row) for row in cursor.fetchall())]
    log = server.log_text().splitlines()
    warnings = [line for line in log if "WARNING" in line or "ERROR" in line][-lines // 2 :]
    return "\n".join([*parts, "server warnings:", *warnings, "server log:", *log[-lines // 2 :]])


@dataclass
class GatewayServer:
    """A running ``manage.py serve`` process."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_gateway(
    log_path: Path,
    *,
    workers: int = 1,
    ready: tuple[str, int] = ROUTE_TABLE_LOADED,
    **env_overrides: str,
) -> GatewayServer:
    """Start ``manage.py serve`` on a free port against the test database; wait until ready.

    Ready: ``GET ready[0]`` answers ``ready[1]`` (by default :data:`ROUTE_TABLE_LOADED`); a
    server whose database is down passes ``("/health/live", 200)``.
    """
    port = free_port()
    env = dict(os.environ)
    if "DATABASE_URL" not in env_overrides:  # a test of a missing database names its own
        env["DATABASE_URL"] = subprocess_database_url()
    env.update(
        {
            "REDIS_URL": "",
            "GATEWAY_CONFIG_MAX_STALENESS": "0.5",
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "LOG_LEVEL": "DEBUG",
            "PYTHONUNBUFFERED": "1",
            # Usage recording has its own tests; a server writing usage rows into the database
            # that is flushed between tests would race the flush.
            "GATEWAY_USAGE_QUEUE": "gateway.usage.events.InMemoryUsageQueue",
            SERVER_ENV_VAR: SERVER_ENV_VALUE,
        }
    )
    env.update(env_overrides)
    log = log_path.open("wb")
    process = subprocess.Popen(  # the interpreter running the tests: the project's venv
        [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = GatewayServer(port=port, process=process, log_path=log_path, env=env)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{server.log_text()}")
        try:
            if httpx.get(server.url + ready[0], timeout=1).status_code == ready[1]:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"gateway did not answer in time:\n{server.log_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def gateway_server(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    """The session's gateway process (DEBUG logging). Stops before the test database goes."""
    server = start_gateway(tmp_path_factory.mktemp("gateway") / "server.log")
    yield server
    server.stop()


@pytest.fixture
def gateway_factory(
    django_db_setup: None, tmp_path: Path
) -> Iterator[Callable[..., GatewayServer]]:
    """Start extra gateway processes with other settings; all stop at teardown."""
    started: list[GatewayServer] = []

    def start(**env: str) -> GatewayServer:
        log = tmp_path / f"server-{len(started)}.log"
        # Both keywords spelled out: ``env`` holds only environment variables.
        server = start_gateway(log, workers=1, ready=ROUTE_TABLE_LOADED, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def publish(server: GatewayServer, *, expect: set[str] | None = None) -> None:
    """Make ``server`` see the current configuration; wait (bounded) until it does.

    A probe key created last proves the table was rebuilt after every earlier write, and
    the aliases it lists must include ``expect`` (default: every alias with an enabled
    mapping on an enabled instance).
    """
    if expect is None:
        expect = set(
            ModelProviderMapping.objects.filter(
                is_enabled=True, provider__is_enabled=True
            ).values_list("model_alias", flat=True)
        )
    probe = make_vkey(f"probe-{time.monotonic_ns()}").plaintext
    version = next(_versions)
    ConfigVersion.objects.update_or_create(pk=1, defaults={"version": version})
    if server.env.get("REDIS_URL"):
        client = sync_redis()
        assert client is not None, "the test process must use the server's Redis"
        client.set(REDIS_KEY, version)
    deadline = time.monotonic() + SYNC_TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        r = httpx.get(server.base_url + "/models", headers={"authorization": f"Bearer {probe}"})
        last = (r.status_code, r.text)
        if r.status_code == 200 and expect <= {m["id"] for m in r.json()["data"]}:
            return
        time.sleep(0.02)
    raise AssertionError(
        f"gateway never picked up the configuration; last answer {last}\n" + stall_report(server)
    )


@dataclass
class World:
    """One test's configuration and clients (see the module docstring)."""

    server: GatewayServer
    fake: FakeUpstream
    _clients: list[Any] = field(default_factory=list)

    # -- configuration --------------------------------------------------------------------
    def provider(self, name: str, provider_type: str = "openai", **kwargs: Any) -> Instance:
        kwargs.setdefault("upstream_url", self.fake.url)
        return make_provider(name, provider_type, **kwargs)

    def mapping(
        self, alias: str, instance: Instance, model: str | None = None, **fields: Any
    ) -> ModelProviderMapping:
        return make_mapping(alias, instance, model, **fields)

    def vkey(self, models: list[str] | None = None, **fields: Any) -> str:
        return make_vkey(models=models, **fields).plaintext

    def publish(
        self, server: GatewayServer | None = None, *, expect: set[str] | None = None
    ) -> None:
        """:func:`publish` to ``server`` (default: this world's)."""
        publish(server or self.server, expect=expect)

    # -- clients --------------------------------------------------------------------------
    def openai(self, key: str, server: GatewayServer | None = None, **kw: Any) -> openai.OpenAI:
        """The official SDK aimed at the gateway; no SDK retries (upstream counts stay exact)."""
        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 20)
        client = openai.OpenAI(base_url=(server or self.server).base_url, api_key=key, **kw)
        self._clients.append(client)
        return client

    def http(self, server: GatewayServer | None = None) -> httpx.Client:
        client = httpx.Client(base_url=(server or self.server).url, timeout=20)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def e2e(
    gateway_server: GatewayServer,
    fake_upstream: FakeUpstream,  # noqa: F811 - the fixture imported above
    transactional_db: None,
) -> Iterator[World]:
    world = World(server=gateway_server, fake=fake_upstream)
    yield world
    world.close()
