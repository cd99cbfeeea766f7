"""The lock files (requirements/*.txt) against pyproject.toml and the running environment.

Checked offline, so a dependency added to pyproject.toml without ``make lock`` fails here
rather than on the next fresh machine, and a test run proves it ran on the locked versions.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DEV_LOCK = ROOT / "requirements" / "dev.txt"
MAIN_LOCK = ROOT / "requirements" / "main.txt"

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)"
    r"(?:\s*;(?P<marker>[^\\]+))?"
)


class Pin:
    """One ``name==version`` entry of a lock file, with its marker and hashes."""

    def __init__(self, name: str, version: str, marker: str | None) -> None:
        self.name = canonicalize_name(name)
        self.version = Version(version)
        self.marker = Marker(marker.strip()) if marker else None
        self.hashes: list[str] = []

    def applies(self) -> bool:
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> dict[str, list[Pin]]:
    """Pins by canonical name (a package may be pinned twice under exclusive markers)."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        match = _PIN.match(line)
        if match:
            current = Pin(match["name"], match["version"], match["marker"])
            pins.setdefault(current.name, []).append(current)
        elif current is not None and stripped.startswith("--hash=sha256:"):
            current.hashes.append(stripped.removeprefix("--hash=").rstrip(" \\"))
    return pins


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements(group: str | None) -> list[Requirement]:
    meta = project()
    raw = meta["dependencies"] if group is None else meta["optional-dependencies"][group]  # type: ignore[index]
    return [Requirement(line) for line in raw]  # type: ignore[union-attr]


def test_every_pin_carries_hashes() -> None:
    for path in (DEV_LOCK, MAIN_LOCK):
        pins = read_lock(path)
        assert pins, f"{path.name} pins nothing"
        unhashed = [p.name for group in pins.values() for p in group if not p.hashes]
        assert not unhashed, f"{path.name}: pins without hashes: {unhashed}"


@pytest.mark.parametrize(
    ("lock", "groups"), [(MAIN_LOCK, (None,)), (DEV_LOCK, (None, "test"))], ids=["main", "dev"]
)
def test_lock_satisfies_pyproject(lock: Path, groups: tuple[str | None, ...]) -> None:
    """Each dependency pyproject.toml declares is pinned, at a version its bounds allow."""
    pins = read_lock(lock)
    problems = []
    for group in groups:
        for req in requirements(group):
            if req.marker is not None and not req.marker.evaluate():
                continue
            found = [p for p in pins.get(canonicalize_name(req.name), []) if p.applies()]
            if not found:
                problems.append(f"{req} is not in {lock.name}")
            elif not req.specifier.contains(found[0].version, prereleases=True):
                problems.append(f"{req} but {lock.name} pins {found[0].version}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_runtime_lock_is_the_dev_lock_subset() -> None:
    """The image runs exactly the versions the tests ran against."""
    dev, main = read_lock(DEV_LOCK), read_lock(MAIN_LOCK)
    differ = {
        name: (str(pins[0].version), str(dev[name][0].version) if name in dev else None)
        for name, pins in main.items()
        if name not in dev or pins[0].version != dev[name][0].version
    }
    assert not differ, f"requirements/main.txt differs from dev.txt (name: main, dev): {differ}"


def test_environment_runs_the_locked_versions() -> None:
    """What this test run imports is what the lock pins (``make install`` installs from it)."""
    drift = []
    for name, group in read_lock(DEV_LOCK).items():
        for pin in group:
            if not pin.applies():
                continue
            try:
                installed = Version(metadata.version(name))
            except metadata.PackageNotFoundError:
                drift.append(f"{name} {pin.version} is not installed")
            else:
                if installed != pin.version:
                    drift.append(f"{name} {installed} installed, {pin.version} locked")
    assert not drift, "run `make install` (or `make lock` after a dependency change): " + "; ".join(
        drift
    )
