"""docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine.

The file is parsed as Compose would (YAML with merge keys, then ``${VAR}`` interpolation from
``.env``), and the gateway's production settings are loaded in a subprocess with exactly the
environment a container would get: if settings start requiring a variable the deployment
does not provide, this fails here rather than in a crash-looping container.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_SERVICES = ("web", "worker", "beat")
# What gateway/settings.py refuses to start without when DEBUG=0.
PRODUCTION_REQUIRED = ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a literal $.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|(^|_)KEYS?$", re.IGNORECASE)
_REFERENCE_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")
_URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")
# Long runs of key-like characters mixing letters and digits (Fernet keys, tokens, API keys).
_HIGH_ENTROPY = re.compile(r"[A-Za-z0-9+/_=-]{24,}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file((ROOT / ".env.example").read_text())


def parse_env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution (the subset the file may use)."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        missing = current is None or (op == ":?" and current == "")
        if op in (":?", "?") and missing:
            raise ValueError(f"compose refuses to start: {arg}")
        return current or ""

    return _INTERPOLATION.sub(repl, value)


def env_files(service: dict[str, Any]) -> list[str]:
    value = service.get("env_file", [])
    items = [value] if isinstance(value, str | dict) else value
    return [item["path"] if isinstance(item, dict) else item for item in items]


def container_env(service: dict[str, Any], dotenv: dict[str, str]) -> dict[str, str]:
    """The environment Compose gives a container: env_file, then ``environment`` over it."""
    env: dict[str, str] = {}
    for path in env_files(service):
        assert path in (".env", "./.env"), path
        env.update(dotenv)
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    for name, value in environment.items():
        env[name] = interpolate(str(value), dotenv)
    return env


def secret_literals(compose_data: Any, path: str = "") -> list[str]:
    """Places in the parsed file that hold what looks like a secret rather than a reference."""
    found: list[str] = []
    if isinstance(compose_data, dict):
        for key, value in compose_data.items():
            where = f"{path}.{key}" if path else str(key)
            if (
                isinstance(value, str | int)
                and _SECRET_NAME.search(str(key))
                and not _REFERENCE_ONLY.match(str(value))
            ):
                found.append(where)
            found.extend(secret_literals(value, where))
    elif isinstance(compose_data, list):
        for i, value in enumerate(compose_data):
            found.extend(secret_literals(value, f"{path}[{i}]"))
    elif isinstance(compose_data, str):
        url = _URL_PASSWORD.search(_INTERPOLATION.sub("${REF}", compose_data))
        if url and url.group("password") != "${REF}":
            found.append(f"{path} (password in URL)")
        for run in _HIGH_ENTROPY.findall(_INTERPOLATION.sub("", compose_data)):
            if re.search(r"[0-9]", run) and re.search(r"[A-Za-z]", run) and "/" not in run:
                found.append(f"{path} ({run[:6]}…)")
    return found


def filled_dotenv(example: dict[str, str]) -> dict[str, str]:
    """``.env.example`` as an operator fills it in: every empty value given one."""
    fake = {
        "SECRET_KEY": "test-secret-key-for-settings-check",
        "FIELD_ENCRYPTION_KEYS": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
        "POSTGRES_PASSWORD": "0123abcd",
    }
    return {name: value or fake.get(name, "x") for name, value in example.items()}


# --- services, commands, health ------------------------------------------------------------


def test_services(compose: dict[str, Any]) -> None:
    default = {name for name, svc in compose["services"].items() if not svc.get("profiles")}
    assert default == {"postgres", "redis", "web", "worker", "beat"}
    observability = set(compose["services"]) - default
    assert observability == {"prometheus", "grafana"}
    for name in observability:
        assert compose["services"][name]["profiles"] == ["observability"], name
    assert compose["services"]["postgres"]["image"] == "postgres:16"
    assert compose["services"]["redis"]["image"] == "redis:7"
    for name in GATEWAY_SERVICES:
        assert compose["services"][name]["build"] in (".", {"context": "."}), name


def command_line(service: dict[str, Any]) -> str:
    command = service["command"]
    if isinstance(command, list):
        if command[:2] == ["sh", "-c"]:
            return str(command[2])
        return " ".join(command)
    return str(command)


def test_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert command_line(services["web"]) == (
        "python manage.py migrate && python manage.py serve --host 0.0.0.0 --port 8000 --workers 2"
    )
    assert command_line(services["worker"]) == "celery -A gateway worker -l info"
    assert command_line(services["beat"]) == "celery -A gateway beat -l info"
    assert "8000:8000" in [str(p) for p in services["web"]["ports"]]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert re.search(r"redis-cli\b.*\bping\b", healthcheck_text(services["redis"]))
    web = healthcheck_text(services["web"])
    assert "http://127.0.0.1:8000/health/live" in web
    for service in services.values():
        if "healthcheck" in service:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")


def test_depends_on_waits_for_healthy_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in GATEWAY_SERVICES:
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert {"postgres", "redis"} <= set(depends), name
        for target, spec in depends.items():
            assert spec == {"condition": "service_healthy"}, (name, target)
            assert "healthcheck" in services[target], f"{name} waits on {target}: no healthcheck"
    # Migrations run in web: worker and beat start after it is healthy.
    for name in ("worker", "beat"):
        assert "web" in services[name]["depends_on"]


# --- environment ------------------------------------------------------------------------------


def test_gateway_services_are_wired_by_environment(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    dotenv = filled_dotenv(env_example)
    for name in GATEWAY_SERVICES:
        env = container_env(compose["services"][name], dotenv)
        assert env["DEBUG"] == "0", name
        assert env["DATABASE_URL"] == "postgres://gateway:0123abcd@postgres:5432/gateway", name
        assert env["REDIS_URL"].startswith("redis://redis:6379"), name
        assert env["ALLOWED_HOSTS"], name
        for required in PRODUCTION_REQUIRED:
            assert env.get(required), f"{name} gets no {required}"


def test_postgres_password_is_shared_not_written(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    dotenv = filled_dotenv(env_example)
    postgres = container_env(compose["services"]["postgres"], dotenv)
    assert postgres["POSTGRES_PASSWORD"] == "0123abcd"
    # Without the value in .env, compose refuses to start instead of running passwordless.
    del dotenv["POSTGRES_PASSWORD"]
    with pytest.raises(ValueError, match=r"set POSTGRES_PASSWORD in \.env"):
        container_env(compose["services"]["web"], dotenv)


def test_production_settings_load_with_the_container_environment(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    """gateway.settings with DEBUG=0 starts with what compose provides, and only with it."""
    env = container_env(compose["services"]["web"], filled_dotenv(env_example))
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    code = "import gateway.settings as s; assert not s.DEBUG; print(s.ALLOWED_HOSTS)"

    def load(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            env={**base, **environment},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = load(env)
    assert ok.returncode == 0, ok.stderr
    for required in PRODUCTION_REQUIRED:
        missing = load({k: v for k, v in env.items() if k != required})
        assert missing.returncode != 0, f"settings no longer require {required}?"
        assert f"{required} (or {required}_FILE) is required" in missing.stderr


def test_env_example_lists_every_secret_with_an_empty_value(env_example: dict[str, str]) -> None:
    for name in (*PRODUCTION_REQUIRED, "POSTGRES_PASSWORD"):
        assert name in env_example, name
        assert env_example[name] == "", f"{name} must be filled in by the operator, not shipped"


# --- no secrets in files that are committed or copied into the image -------------------------


def test_observability_services_mount_the_deploy_files(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {
        name: {v.split(":")[0]: v.split(":")[1] for v in services[name]["volumes"]}
        for name in ("prometheus", "grafana")
    }
    assert mounts["prometheus"]["./deploy/prometheus"] == "/etc/prometheus"
    assert mounts["grafana"]["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["grafana"]["./deploy/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    for host_path in (*mounts["prometheus"], *mounts["grafana"]):
        if host_path.startswith("./"):
            assert (ROOT / host_path).is_dir(), host_path
    # The scrape job's token file is the compose secret, filled from the environment.
    assert services["prometheus"]["secrets"] == ["gateway_metrics_token"]
    assert compose["secrets"]["gateway_metrics_token"] == {"environment": "GATEWAY_METRICS_TOKEN"}
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    assert job["authorization"]["credentials_file"] == "/run/secrets/gateway_metrics_token"
    # Prometheus scrapes web:8000: the gateway must accept that Host (default and example).
    host = job["static_configs"][0]["targets"][0].split(":")[0]
    assert host in services["web"]["environment"]["ALLOWED_HOSTS"]
    assert host in parse_env_file((ROOT / ".env.example").read_text())["ALLOWED_HOSTS"].split(",")


def test_no_secret_literal_in_compose_file(compose: dict[str, Any]) -> None:
    assert secret_literals(compose) == []
    raw = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"[A-Za-z0-9_-]{43}=", raw), "a Fernet key?"
    assert "sk-" not in raw


@pytest.mark.parametrize(
    "planted",
    [
        {"environment": {"SECRET_KEY": "hunter2-hunter2"}},
        {"environment": {"POSTGRES_PASSWORD": "pw"}},
        {"environment": {"DATABASE_URL": "postgres://gateway:s3cret@postgres/gateway"}},
        {"environment": {"FIELD_ENCRYPTION_KEYS": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="}},
        {"environment": {"EXTRA": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="}},
        {"environment": ["OPENAI_API_KEY=sk-abc123def456ghi789jkl012"]},
    ],
)
def test_secret_scanner_catches_planted_secrets(planted: dict[str, Any]) -> None:
    assert secret_literals({"services": {"web": planted}}) != []


def test_dockerfile_and_ignore_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", dockerfile, re.MULTILINE)
    # The image installs the runtime lock, hash-checked, before the project (without deps), and
    # the lock's file is in the build context.
    lock = re.search(
        r"^RUN pip install --require-hashes -r requirements/main\.txt\s*$", dockerfile, re.MULTILINE
    )
    project = re.search(r"^RUN pip install --no-deps \.\s*$", dockerfile, re.MULTILINE)
    assert lock and project and lock.start() < project.start()
    assert (ROOT / "requirements" / "main.txt").is_file()
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE)
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    for excluded in (".env", ".git", ".venv", "var"):
        assert excluded in dockerignore, excluded
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False, timeout=30
    )
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_web_and_worker_share_a_persistent_usage_spool(compose: dict[str, Any]) -> None:
    """The spool and journal outlive a recreated web container, and the worker that adopts a
    dead web process's files sees them: one named volume at the directory the app uses."""
    from django.test import override_settings

    from gateway.usage.spool import spool_dir

    dockerfile = (ROOT / "Dockerfile").read_text()
    state_dir = re.search(r"GATEWAY_STATE_DIR=(\S+)", dockerfile)
    assert state_dir is not None
    with override_settings(STATE_DIR=Path(state_dir.group(1))):
        in_container = str(spool_dir())
    services = compose["services"]
    mounts = {
        name: dict(v.split(":")[:2] for v in services[name].get("volumes", []))
        for name in ("web", "worker")
    }
    volumes = {
        next((src for src, dst in m.items() if dst == in_container), None) for m in mounts.values()
    }
    assert len(volumes) == 1 and None not in volumes, mounts
    [volume] = volumes
    assert volume in compose["volumes"]  # a named volume, not a path on one host
    # The image creates the directory for its unprivileged user: a new named volume copies
    # the image directory's owner, so the gateway can write there.
    assert f"mkdir -p {in_container}" in dockerfile
    assert re.search(r"chown -R gateway:gateway " + re.escape(state_dir.group(1)), dockerfile)
