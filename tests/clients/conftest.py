"""The client matrix: real clients, unmodified, against a real gateway process.

One gateway process (``manage.py serve``) serves the whole package, with one configuration
created once (committed, so the process sees it) and flushed at the end. Unlike the e2e
server, this one writes usage records to the database, so a test can check that a client's
requests were recorded. Tests that change the configuration (Claude tiers) publish it again.

Instances, all pointing at the fake upstream (``tests.fakes.upstream``):

- ``openai`` (type openai): aliases ``gpt``, ``gpt-mini``, ``embed``: served natively for chat
  completions, embeddings and the Responses API;
- ``compat`` (type openai_compatible, chat completions only): alias ``compat-gpt``: Responses
  and Messages requests reach it translated into chat completions;
- ``claude`` (type anthropic): aliases ``claude``, ``claude-haiku``: Messages served natively.

Clients: the Python SDKs come from pyproject's ``test`` extras; the CLIs (Claude Code, Codex)
from package.json, installed into ./node_modules by ``make clients``. A missing client skips
its tests with the reason in a bare ``make test`` and fails them under CI
(``CI_REQUIRE_SERVICES=1``), like a missing service.
"""

from __future__ import annotations

import importlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from gateway.usage.models import UsageRecord
from mappings.models import TierAlias
from tests.conftest import missing_service
from tests.e2e.conftest import BASE_DIR, GatewayServer, World, start_gateway
from tests.fakes.upstream import FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401

NODE_BIN = BASE_DIR / "node_modules" / ".bin"
USAGE_TIMEOUT = 10.0


def need_module(name: str) -> ModuleType:
    """Import a client library from the test extras; skip (bare) or fail (CI) without it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing_service(f"Python client {name!r} ({exc}); install with: make install")
        raise  # unreachable: missing_service skips or fails


def need_cli(name: str) -> str:
    """The path of a CLI from package.json; skip (bare) or fail (CI) when not installed."""
    path = NODE_BIN / name
    if not path.exists():
        hint = "make clients" if shutil.which("npm") else "install node and npm, then make clients"
        missing_service(f"CLI {name!r} is not in {NODE_BIN.relative_to(BASE_DIR)} ({hint})")
    return str(path)


@dataclass
class Clients:
    """The package's gateway, its configuration and helpers for the tests."""

    world: World
    unblock: Callable[[], Any]
    key: str
    instances: dict[str, Any] = field(default_factory=dict)
    key_names: dict[str, str] = field(default_factory=dict)

    @property
    def server(self) -> GatewayServer:
        return self.world.server

    def new_key(self) -> str:
        """A fresh virtual key (published), so a test's usage records are its own."""
        name = f"client-{secrets.token_hex(4)}"
        with self.unblock():
            key = self.world.vkey(name=name)
            self.world.publish()
        self.key_names[key] = name
        return key

    def set_tiers(self, **aliases: str) -> None:
        """Point Claude tiers at aliases (``middle="claude"``) and publish."""
        with self.unblock():
            for tier, alias in aliases.items():
                TierAlias.objects.update_or_create(tier=tier, defaults={"alias": alias})
            self.world.publish()

    def usage(self, key: str, count: int = 1, **filters: Any) -> list[UsageRecord]:
        """Usage records of virtual key ``key``: waits (bounded) until ``count`` exist."""
        deadline = time.monotonic() + USAGE_TIMEOUT
        while True:
            with self.unblock():
                rows = list(
                    UsageRecord.objects.filter(
                        virtual_key__name=self.key_names[key], **filters
                    ).order_by("created_at")
                )
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture(scope="session")
def clients_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The test database, set up here when pytest-django did not (it sets it up only for the
    tests that ask for ``db``; these tests use the database outside test transactions)."""
    from django.test.utils import setup_databases, teardown_databases

    if connection.creation._get_test_db_name() == connection.settings_dict["NAME"]:
        yield
        return
    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


@pytest.fixture(scope="package")
def clients(
    clients_db: None,
    django_db_blocker: Any,
    fake_upstream_server: FakeUpstream,  # noqa: F811 - the fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Clients]:
    server = start_gateway(
        tmp_path_factory.mktemp("clients-gateway") / "server.log",
        GATEWAY_USAGE_QUEUE="gateway.usage.queues.DatabaseUsageQueue",
    )
    world = World(server=server, fake=fake_upstream_server)
    try:
        with django_db_blocker.unblock():
            openai_ = world.provider("openai", "openai")
            compat = world.provider("compat", "openai_compatible")
            claude = world.provider("claude", "anthropic")
            world.mapping("gpt", openai_, "fake-gpt")
            world.mapping("gpt-mini", openai_, "fake-gpt-mini")
            world.mapping(
                "embed", openai_, "fake-embed", supports_chat=False, supports_embeddings=True
            )
            world.mapping("compat-gpt", compat, "fake-gpt")
            world.mapping("claude", claude, "claude-fake")
            world.mapping("claude-haiku", claude, "claude-fake-haiku")
            for tier, alias in (("big", "claude"), ("middle", "claude"), ("small", "gpt-mini")):
                TierAlias.objects.create(tier=tier, alias=alias)
            key = world.vkey(name="clients")
            world.publish()
        yield Clients(
            world=world,
            unblock=django_db_blocker.unblock,
            key=key,
            instances={"openai": openai_, "compat": compat, "claude": claude},
            key_names={key: "clients"},
        )
    finally:
        world.close()
        server.stop()  # flushes its usage buffer before the rows go
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def gw(clients: Clients, fake_upstream: FakeUpstream) -> Clients:  # noqa: F811
    """The package's gateway, with the fake upstream healthy and its log empty."""
    return clients


def node_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment for a CLI: a throwaway HOME, no proxy, nothing inherited that
    could point it elsewhere."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(extra)
    return env
