"""No SQL query on a warm request: the hot path reads the in-memory route table only.

Checked three ways: ``django_assert_num_queries(0)`` (this thread's connection), a spy on every
cursor of every thread (``sync_to_async`` work runs elsewhere), and with database access
blocked outright, where any query would raise and turn the response into a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest

from gateway.routing.table import RouteTable
from providers.models import Provider
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import (
    InProcessGateway,
    all_threads_queries,
    check_hot_responses,
    hot_requests,
)


@pytest.fixture
def keys(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> dict[str, str]:
    mock_inst = make_provider("mock-inst", "mock")
    upstream = make_provider("fake-inst", "openai", upstream_url=fake_upstream.url)
    make_mapping("mock-chat", mock_inst)
    make_mapping("up-chat", upstream)
    make_mapping("up-embed", upstream, "fake-embed", supports_chat=False, supports_embeddings=True)
    keys = {
        "plain": make_vkey("plain").plaintext,
        "budgeted": make_vkey("budgeted", budget_amount=Decimal("100.00")).plaintext,
    }
    install_table()
    return keys


def test_requests_run_no_sql(
    keys: dict[str, str],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    django_assert_num_queries: Callable,
) -> None:
    with all_threads_queries() as queries, django_assert_num_queries(0):
        responses = gateway.run(lambda c: hot_requests(c, keys["plain"]))
    check_hot_responses(responses)
    assert queries == []
    assert len(fake_upstream.requests()) == 3  # the upstream ones really went out


def test_warm_requests_with_a_budget_run_no_sql(
    keys: dict[str, str], gateway: InProcessGateway, django_assert_num_queries: Callable
) -> None:
    # A key with a budget may load the budget state once (cold start); after that, none.
    gateway.run(lambda c: hot_requests(c, keys["budgeted"]))
    with all_threads_queries() as queries, django_assert_num_queries(0):
        responses = gateway.run(lambda c: hot_requests(c, keys["budgeted"]))
    check_hot_responses(responses)
    assert queries == []


def test_requests_succeed_with_database_access_blocked(
    keys: dict[str, str], gateway: InProcessGateway, django_db_blocker
) -> None:
    gateway.run(lambda c: hot_requests(c, keys["budgeted"]))  # warm
    with django_db_blocker.block():
        for key in keys.values():
            check_hot_responses(gateway.run(lambda c, key=key: hot_requests(c, key)))


def test_the_harness_sees_queries_from_other_threads(db: None, django_db_blocker) -> None:
    """The two checks above would catch a query made from a worker thread."""
    errors: list[BaseException] = []

    def query() -> None:
        try:
            Provider.objects.count()
        except BaseException as exc:
            errors.append(exc)

    with all_threads_queries() as queries:
        worker = threading.Thread(target=query)
        worker.start()
        worker.join()
    assert any("providers_provider" in q for q in queries) and not errors
    with django_db_blocker.block():
        worker = threading.Thread(target=query)
        worker.start()
        worker.join()
    assert errors and "Database access not allowed" in str(errors[0])
