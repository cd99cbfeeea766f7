"""Secure defaults: DEBUG off unless set, and `check --deploy` clean with the README's
production settings (run in a subprocess with exactly those variables)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
PROXY_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def readme_production_env() -> dict[str, str]:
    """The ``env`` block under the README's "Production settings" heading."""
    readme = (BASE_DIR / "README.md").read_text()
    match = re.search(r"#### Production settings\n.*?```env\n(.*?)```", readme, re.S)
    assert match, "README has no production settings block"
    pairs = [line.split("=", 1) for line in match.group(1).splitlines() if "=" in line]
    return {name.strip(): value.strip() for name, value in pairs}


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The process environment without any of the gateway's settings, plus ``extra``."""
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["GATEWAY_STATE_DIR"] = str(tmp_path / "state")
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_debug_is_off_unless_set(tmp_path: Path) -> None:
    code = "import gateway.settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE)"
    unset = run(["-c", code], clean_env(tmp_path))
    # Off: the development secrets are not generated, the process refuses to start without them.
    assert unset.returncode != 0 and "SECRET_KEY" in unset.stderr
    with_secrets = clean_env(
        tmp_path, SECRET_KEY="x" * 60, FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode()
    )
    assert run(["-c", code], with_secrets).stdout.split() == ["False", "True"]
    on = run(["-c", code], clean_env(tmp_path, DEBUG="1"))
    assert on.stdout.split() == ["True", "False"]


def test_check_deploy_is_clean_with_the_readme_production_settings(tmp_path: Path) -> None:
    production = readme_production_env()
    for name in ("SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT", "TRUST_X_FORWARDED_PROTO"):
        assert name in production
    # The README names secret files; the test writes throwaway secrets into them.
    secrets = {
        "SECRET_KEY_FILE": "s" * 20 + os.urandom(24).hex(),
        "FIELD_ENCRYPTION_KEYS_FILE": Fernet.generate_key().decode(),
    }
    for name, value in secrets.items():
        path = tmp_path / name.lower()
        path.write_text(value)
        production[name] = str(path)
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        clean_env(tmp_path, **production),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value", "setting", "expected"),
    [
        (
            "TRUST_X_FORWARDED_PROTO",
            "1",
            "SECURE_PROXY_SSL_HEADER",
            "('HTTP_X_FORWARDED_PROTO', 'https')",
        ),
        ("TRUST_X_FORWARDED_PROTO", "0", "SECURE_PROXY_SSL_HEADER", "None"),
        ("SECURE_HSTS_SECONDS", "600", "SECURE_HSTS_SECONDS", "600"),
        ("SECURE_SSL_REDIRECT", "yes", "SECURE_SSL_REDIRECT", "True"),
    ],
)
def test_security_settings_come_from_the_environment(
    tmp_path: Path, name: str, value: str, setting: str, expected: str
) -> None:
    code = f"from django.conf import settings as s; print(s.{setting})"
    env = clean_env(tmp_path, DEBUG="1", DJANGO_SETTINGS_MODULE="gateway.settings", **{name: value})
    result = run(["-c", "import django; django.setup(); " + code], env)
    assert result.stdout.strip() == expected, result.stderr


def test_a_bad_value_names_the_variable(tmp_path: Path) -> None:
    env = clean_env(tmp_path, DEBUG="1", SECURE_HSTS_SECONDS="a year")
    result = run(["-c", "import gateway.settings"], env)
    assert result.returncode != 0 and "SECURE_HSTS_SECONDS" in result.stderr
