"""Claude Code (npm ``@anthropic-ai/claude-code``, unmodified) in print mode against the
gateway: ``--model sonnet`` and ``--model haiku`` resolve to Claude model names that the
gateway's tier rules map to an alias on an anthropic instance (native) or an openai-type one
(translated). A wrong key must fail fast, without a retry storm.

The environment is the README's: ``ANTHROPIC_BASE_URL`` (the gateway, without ``/v1``) and
``ANTHROPIC_API_KEY`` (a virtual key), plus a throwaway ``HOME`` and the switches that keep
Claude Code from calling anything but the gateway."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import Clients, need_cli, node_env
from tests.clients.forwarder import CountingForwarder
from tests.e2e.conftest import BASE_DIR
from tests.fakes import wire

RUN_TIMEOUT = 60
WRONG_KEY_TIMEOUT = 30  # a bound, not a measurement: "fast" is judged by the request count
PROMPT = "Say hello"
NO_PHONING_HOME = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}


def run_claude(
    base_url: str, key: str, home: Path, *args: str, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``claude -p PROMPT ARGS``; a run past ``timeout`` is killed and reported as exit -9."""
    env = node_env(home, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY=key, **NO_PHONING_HOME)
    command = [need_cli("claude"), "-p", PROMPT, *args]
    try:
        return subprocess.run(
            command,
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        return subprocess.CompletedProcess(command, -9, out, f"killed after {timeout} s")


def fake_reply(request: Any) -> str:
    """What the fake answered to ``request`` (its replies are a function of the request)."""
    if request.route == "anthropic_messages":
        return wire.decide_anthropic(request.json).text
    return wire.decide_openai(request.json).text


@pytest.mark.parametrize("model", ["sonnet", "haiku"])
@pytest.mark.parametrize(
    ("alias", "route"),
    [
        pytest.param("claude", "anthropic_messages", id="anthropic-instance"),
        pytest.param("compat-gpt", "openai_chat", id="openai-instance"),
    ],
)
def test_print_mode(gw: Clients, tmp_path: Path, model: str, alias: str, route: str) -> None:
    gw.set_tiers(middle=alias, small=alias)  # sonnet-class and haiku-class names
    key = gw.new_key()
    result = run_claude(gw.server.url, key, tmp_path, "--model", model)
    assert result.returncode == 0, result.stderr or result.stdout

    answered = [r for r in gw.world.fake.requests() if r.status == 200]
    assert answered, gw.world.fake.requests()
    assert {r.route for r in answered} == {route}
    # Claude Code asked for a Claude name of the chosen class; the tier picked the alias.
    assert result.stdout.strip() == fake_reply(answered[-1]).strip()
    assert PROMPT in result.stdout or "Tool said" in result.stdout

    rows = gw.usage(key, count=len(answered), status_code=200)
    assert len(rows) == len(answered)
    assert {row.model_alias for row in rows} == {alias}
    assert all(row.completion_tokens > 0 for row in rows)


def test_readme_environment_is_the_tested_one() -> None:
    section = (BASE_DIR / "README.md").read_text().split("**Claude Code**", 1)[1]
    snippet = section.split("```sh", 1)[1].split("```", 1)[0]
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", *NO_PHONING_HOME):
        if name != "DISABLE_ERROR_REPORTING":
            assert name in snippet, name


def test_wrong_key_fails_fast(gw: Clients, tmp_path: Path) -> None:
    with CountingForwarder(gw.server.url) as forwarder:
        result = run_claude(
            forwarder.url,
            "sk-gw-not-a-key",
            tmp_path,
            "--model",
            "sonnet",
            timeout=WRONG_KEY_TIMEOUT,
        )
    seen = list(forwarder.seen)
    statuses = {status for _, status in seen}
    assert statuses == {401}, seen
    # It gave up on the gateway's 401 instead of retrying until killed.
    assert len(seen) <= 2, f"{len(seen)} requests, exit {result.returncode}: {seen[:3]}"
    assert result.returncode not in (0, -9), result.stderr
    assert not gw.world.fake.requests()
