"""Codex CLI (npm ``@openai/codex``, unmodified): ``codex exec`` with a ``CODEX_HOME`` whose
``config.toml`` makes the gateway its model provider (Responses wire API, the virtual key in an
environment variable), against a chat-only instance (translated) and a native openai one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import Clients, need_cli, node_env
from tests.e2e.conftest import BASE_DIR
from tests.fakes.wire import echo_reply, tool_answer

RUN_TIMEOUT = 90
PROMPT = "Say hello"
KEY_VARIABLE = "GATEWAY_API_KEY"

README_BASE_URL = "http://127.0.0.1:8000/v1"


def readme_config() -> str:
    """The README's config.toml (section "Clients"): the tests use it as documented."""
    readme = (BASE_DIR / "README.md").read_text()
    section = readme.split("**Codex CLI**", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match, "README: the Codex CLI snippet is gone"
    config = match.group(1)
    assert f'base_url = "{README_BASE_URL}"' in config
    assert f'env_key = "{KEY_VARIABLE}"' in config
    return config


def run_codex(
    gw: Clients, tmp_path: Path, model: str, key: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    config = readme_config().replace(README_BASE_URL, gw.server.base_url)
    config = re.sub(r'^model = ".*"$', f'model = "{model}"', config, count=1, flags=re.M)
    (codex_home / "config.toml").write_text(config)
    workdir = tmp_path / "work"
    workdir.mkdir()
    last = tmp_path / "last-message.txt"
    env = node_env(tmp_path, CODEX_HOME=str(codex_home), **{KEY_VARIABLE: key})
    result = subprocess.run(
        [
            need_cli("codex"),
            "exec",
            "--skip-git-repo-check",
            "--ephemeral",
            "--sandbox",
            "read-only",
            "--output-last-message",
            str(last),
            PROMPT,
        ],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return result, last.read_text() if last.exists() else ""


@pytest.mark.parametrize(
    "alias",
    [
        pytest.param("compat-gpt", id="translated-chat-only"),
        pytest.param("gpt", id="native-openai"),
    ],
)
def test_exec(gw: Clients, tmp_path: Path, alias: str) -> None:
    key = gw.new_key()
    result, answer = run_codex(gw, tmp_path, alias, key)
    assert result.returncode == 0, result.stderr[-3000:]
    # The fake answers the prompt (or, when Codex offered tools, the result of its tool call).
    assert answer.strip().startswith((echo_reply(""), tool_answer(""))), answer
    assert gw.world.fake.requests(), "nothing reached the upstream"
    rows = gw.usage(key, status_code=200)
    assert rows and {row.model_alias for row in rows} == {alias}
