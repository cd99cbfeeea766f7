"""Usage is money: under Redis killed, PostgreSQL stopped, the Celery worker SIGKILLed and the
web process SIGTERMed during streams, every answered request gets exactly one usage record.

Real processes against private servers (:mod:`tests.faults.services`): ``manage.py serve
--workers 2`` and a Celery worker on a private Redis (AOF, fsync always) and a private
PostgreSQL, the loopback fake upstream, concurrent mixed streaming and plain traffic. Each
answered request is known by its ``x-request-id``; afterwards the usage table must hold each
of them exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from celery import Celery
from django.conf import settings

from tests.e2e.conftest import free_port
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.faults.services import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.e2e

BASE_DIR = Path(settings.BASE_DIR)
CLIENTS = 6
RECORD_TIMEOUT = 60.0
SETUP = """
from tests.factories import make_mapping, make_provider, make_vkey
inst = make_provider("fault-openai", "openai", upstream_url={url!r})
make_mapping("fault", inst, "fake-gpt")
print("KEY=" + make_vkey("fault-app").plaintext)
"""


@dataclass
class Stack:
    """The private servers, the processes under test and their environment."""

    tmp: Path
    redis: PrivateRedis
    pg: PrivatePostgres
    env: dict[str, str] = field(default_factory=dict)
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)
    key: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, *args], cwd=BASE_DIR, env=self.env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        return process

    def start_web(self) -> None:
        self.web = self._spawn(
            "web", "manage.py", "serve", "--port", str(self.port), "--workers", "2"
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.web.poll() is None, self.log("web")
            assert time.monotonic() < deadline, self.log("web")
            time.sleep(0.1)

    def start_worker(self) -> None:
        self.worker = self._spawn(
            "worker", "-m", "celery", "-A", "gateway", "worker", "--pool=solo", "-c", "1",
            "--without-gossip", "--without-mingle", "--loglevel=INFO",
            f"--hostname=faults-{os.getpid()}-{time.monotonic_ns()}@%h",
        )  # fmt: skip

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def stack(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[Stack]:
    redis = PrivateRedis(tmp_path / "redis")
    pg = PrivatePostgres()
    s = Stack(tmp=tmp_path, redis=redis, pg=pg)
    try:
        redis.start()
        pg.init()
        s.env = {
            **os.environ,
            "DATABASE_URL": pg.url,
            "REDIS_URL": redis.url,
            "CELERY_BROKER_URL": redis.url,
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "GATEWAY_STATE_DIR": str(tmp_path / "state"),
            "GATEWAY_USAGE_DRAIN_SECONDS": "3",
            "GATEWAY_USAGE_CLAIM_IDLE_SECONDS": "2",
            "GATEWAY_USAGE_RETRY_SECONDS": "0.5",
            "GATEWAY_CONFIG_CHECK_INTERVAL": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        s.env.pop("GATEWAY_USAGE_QUEUE", None)
        s.manage("migrate", "--noinput")
        out = s.manage("shell", "-c", SETUP.format(url=fake_upstream.url))
        s.key = out.strip().rsplit("KEY=", 1)[1].strip()
        fake_upstream.behave(Behaviour(chunk_delay=0.03))
        s.start_web()
        s.start_worker()
        yield s
    finally:
        s.stop()
        redis.stop()
        pg.destroy()


@dataclass
class Traffic:
    """Client threads sending chat requests, alternately streamed and plain, until stopped."""

    url: str
    key: str
    answered: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    unfinished_streams: list[str] = field(default_factory=list)
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def one(self, client: httpx.Client, n: int, stream: bool) -> None:
        body = {
            "model": "fault",
            "stream": stream,
            "messages": [{"role": "user", "content": f"request number {n} please answer"}],
        }
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            text = response.read().decode()
        rid = response.headers.get("x-request-id", f"<none:{n}>")
        with self.lock:
            if response.status_code >= 500:
                self.server_errors.append(f"{response.status_code} {text[:300]}")
            elif response.status_code < 300:
                self.answered.append(rid)
                if stream and "data: [DONE]" not in text:
                    self.unfinished_streams.append(rid)

    def client(self, index: int) -> None:
        n = index * 100_000
        headers = {"authorization": f"Bearer {self.key}"}
        while not self.stop.is_set():
            n += 1
            # A fresh connection per request: the kernel spreads them over both workers.
            with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
                try:
                    self.one(client, n, stream=n % 2 == 0)
                except httpx.TransportError:
                    with self.lock:
                        self.refused += 1
                    time.sleep(0.05)

    @contextlib.contextmanager
    def served_during(self, what: str) -> Iterator[None]:
        """Inside: the outage. Before it ends, at least one answer must arrive (bounded wait:
        no timing assumption beyond "eventually")."""
        before = len(self.answered)
        yield
        deadline = time.monotonic() + 30
        while len(self.answered) <= before:
            assert time.monotonic() < deadline, f"nothing answered while {what}"
            time.sleep(0.1)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        return threads


def drain_loop(broker: str, stop: threading.Event) -> None:
    """What beat does in production: ask for a drain every second (a no-op when Redis is
    down, the next tick goes through)."""
    app = Celery(broker=broker, set_as_current=False)  # later tests must not send to it
    while not stop.wait(1.0):
        with contextlib.suppress(Exception):  # broker down: the next tick goes through
            app.send_task("gateway.usage_drain")
    app.close()


def recorded(pg: PrivatePostgres) -> list[str]:
    with psycopg.connect(pg.url.replace("postgres://", "postgresql://"), connect_timeout=5) as db:
        return [row[0] for row in db.execute("SELECT request_id FROM gateway_usagerecord")]


def test_every_answer_recorded_once_through_faults(stack: Stack) -> None:
    traffic = Traffic(stack.url, stack.key)
    drains = threading.Event()
    drainer = threading.Thread(target=drain_loop, args=(stack.redis.url, drains))
    drainer.start()
    threads = traffic.run()
    try:
        time.sleep(2)
        served = traffic.served_during
        # A warm gateway keeps answering through each outage (answers arrive while it lasts).
        with served("redis down"):
            stack.redis.kill()  # Redis dies with events in flight
            time.sleep(2)
        stack.redis.start()
        time.sleep(2)
        with served("postgres down"):
            stack.pg.stop()  # the database goes away under a warm gateway and a draining worker
            time.sleep(2)
        stack.pg.start()
        time.sleep(2)
        assert stack.worker is not None
        stack.worker.send_signal(signal.SIGKILL)  # mid-batch, maybe: unacked entries remain
        stack.worker.wait(10)
        time.sleep(1)
        stack.start_worker()
        time.sleep(2)
        assert stack.web is not None
        stack.web.send_signal(signal.SIGTERM)  # a rolling restart while streams are in flight
        stack.web.wait(30)
    finally:
        traffic.stop.set()
        for t in threads:
            t.join(60)
    try:
        answered = set(traffic.answered)
        assert len(answered) == len(traffic.answered), "a request id answered twice"
        assert answered and not traffic.server_errors, traffic.server_errors[:5]
        assert not traffic.unfinished_streams, "SIGTERM cut in-flight streams"
        deadline = time.monotonic() + RECORD_TIMEOUT
        while True:
            rows = recorded(stack.pg)
            if answered <= set(rows) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        missing = answered - set(rows)
        assert not missing, f"{len(missing)} of {len(answered)} answers unrecorded\n" + stack.log(
            "worker"
        )
        doubled = {r for r in rows if rows.count(r) > 1}
        assert not doubled, f"recorded twice: {sorted(doubled)[:5]}"
        print(
            f"faults: {len(answered)} answered ({traffic.refused} refused while down), "
            f"{len(rows)} records"
        )
    finally:
        drains.set()
        drainer.join(10)
