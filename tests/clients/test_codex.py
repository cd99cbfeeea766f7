"""Codex CLI (npm ``@openai/codex``, unmodified): ``codex exec`` with a ``CODEX_HOME`` whose
``config.toml`` makes the gateway its model provider (Responses wire API, the virtual key in an
environment variable), against a chat-only instance (translated) and a native openai one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import Clients, need_cli, node_env
from tests.fakes.wire import echo_reply, tool_answer

RUN_TIMEOUT = 90
PROMPT = "Say hello"
KEY_VARIABLE = "GATEWAY_API_KEY"

# The README's config.toml, with the gateway's address and the alias filled in.
CONFIG = """\
model = "{model}"
model_provider = "gateway"
check_for_update_on_startup = false

[model_providers.gateway]
name = "LLM gateway"
base_url = "{base_url}"
wire_api = "responses"
env_key = "{key_variable}"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
"""


def run_codex(
    gw: Clients, tmp_path: Path, model: str, key: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        CONFIG.format(model=model, base_url=gw.server.base_url, key_variable=KEY_VARIABLE)
    )
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
