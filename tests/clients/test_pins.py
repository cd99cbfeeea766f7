"""The clients that run are the ones pinned: package.json for the CLIs, pyproject's ``test``
extras for the Python libraries (a stale install would test another version)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from importlib import metadata

import pytest

from tests.clients.conftest import need_cli, node_env
from tests.e2e.conftest import BASE_DIR

PYTHON_CLIENTS = ("openai-agents", "langchain-openai", "langchain-anthropic")


def test_python_clients_match_their_pins() -> None:
    extras = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["test"]
    pins = dict(
        re.fullmatch(r"([\w.-]+)==([\w.]+)", spec).groups() for spec in extras if "==" in spec
    )  # type: ignore[union-attr]
    for name in PYTHON_CLIENTS:
        assert name in pins, f"{name} must be pinned with == in the test extras"
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed: make install")
        assert installed == pins[name], f"{name} {installed} installed, {pins[name]} pinned"


@pytest.mark.parametrize(
    ("cli", "package"), [("claude", "@anthropic-ai/claude-code"), ("codex", "@openai/codex")]
)
def test_clis_match_their_pins(cli: str, package: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pinned = json.loads((BASE_DIR / "package.json").read_text())["devDependencies"][package]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"{package} must be an exact version"
    version = subprocess.run(
        [need_cli(cli), "--version"],
        env=node_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert pinned in version, f"{cli} says {version.strip()!r}, {pinned} pinned: make clients"
