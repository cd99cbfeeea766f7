"""Rate-limit windows: their length follows the setting, and their key names the window."""

from __future__ import annotations

from typing import Any

from gateway.routing.state.windows import window, window_at, window_keys, window_ttl


def test_window_length_and_key_names_follow_the_setting(settings: Any) -> None:
    settings.GATEWAY_RATE_LIMIT_WINDOW = 60
    now = 6_000.0  # window 100 of a minute's length
    assert window() == 60.0 and window_ttl() == 122
    assert window_keys("p", 7, now) == (
        "gw:{i:7}:rl:r:100",
        "gw:{i:7}:rl:r:99",
        "gw:{i:7}:rl:t:100",
        "gw:{i:7}:rl:t:99",
    )

    settings.GATEWAY_RATE_LIMIT_WINDOW = 3600  # read again, not the first value kept
    assert window() == 3600.0 and window_ttl() == 7202
    assert window_at(now) == (1, 6_000 % 3600 / 3600)
    assert window_keys("p", 7, now)[:2] == ("gw:{i:7}:rl:r:1", "gw:{i:7}:rl:r:0")
    assert window_keys("k", 7, now)[0] == "gw:{v:7}:rl:r:1"


def test_key_names_move_with_the_window(settings: Any) -> None:
    settings.GATEWAY_RATE_LIMIT_WINDOW = 60
    assert window_keys("k", 3, 59.9)[0] == "gw:{v:3}:rl:r:0"
    assert window_keys("k", 3, 60.0)[:2] == ("gw:{v:3}:rl:r:1", "gw:{v:3}:rl:r:0")
