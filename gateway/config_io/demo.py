"""The offline demo: demo configuration, a demo virtual key and an admin user.

The demo key and the admin password are random per checkout and kept in ``STATE_DIR`` (the
untracked ``var/`` directory, files mode 0600), so rerunning ``demo_setup`` prints the same
credentials instead of silently replacing ones the user already copied.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from gateway.config_io.fileformat import config_parse
from gateway.config_io.importer import config_import
from gateway.config_io.report import ImportReport
from gateway.keys.models import VirtualKey, hash_key
from gateway.keys.services import virtual_key_create, virtual_key_rotate

DEMO_FILE = Path(__file__).resolve().parent / "fixtures" / "demo.yaml"
DEMO_KEY_NAME = "demo"
DEMO_ADMIN = "admin"
KEY_FILE = "demo_key"
PASSWORD_FILE = "demo_admin_password"


@dataclass
class DemoSetup:
    """What ``demo_setup`` found or made. ``admin_password`` is None when the admin user
    existed before and is not managed by the demo (its password is left alone)."""

    report: ImportReport
    key: str
    key_created: bool
    admin_username: str
    admin_password: str | None
    admin_created: bool


@transaction.atomic
def demo_setup(*, state_dir: Path) -> DemoSetup:
    """Import ``demo.yaml``, ensure the ``demo`` virtual key and the ``admin`` superuser.

    Idempotent: a second run writes nothing and returns the same key and password.
    """
    # The admin first: the import's History entries name it.
    password, admin_created = _demo_admin(state_dir / PASSWORD_FILE)
    report = config_import(
        data=config_parse(text=DEMO_FILE.read_text(), filename=str(DEMO_FILE)),
        actor=get_user_model().objects.get(username=DEMO_ADMIN),
    )
    key, key_created = _demo_key(state_dir / KEY_FILE)
    return DemoSetup(
        report=report,
        key=key,
        key_created=key_created,
        admin_username=DEMO_ADMIN,
        admin_password=password,
        admin_created=admin_created,
    )


def _demo_key(path: Path) -> tuple[str, bool]:
    stored = _read_secret(path)
    vkey = VirtualKey.objects.filter(name=DEMO_KEY_NAME).first()
    if vkey is None:
        # A kept key is reused after a database reset, so clients configured with it still work.
        _, plaintext = virtual_key_create(name=DEMO_KEY_NAME, key=stored or None)
        if plaintext != stored:
            _write_secret(path, plaintext)
        return plaintext, True
    if stored and hash_key(stored) == vkey.key_hash:
        return stored, False
    # The key exists but its plaintext is lost (state dir wiped): only the hash is stored, so
    # the only way to show a working key is a new one.
    plaintext = virtual_key_rotate(vkey=vkey)
    _write_secret(path, plaintext)
    return plaintext, True


def _demo_admin(path: Path) -> tuple[str | None, bool]:
    user_model = get_user_model()
    stored = _read_secret(path)
    user = user_model.objects.filter(username=DEMO_ADMIN).first()
    if user is None:
        password = stored or secrets.token_urlsafe(18)
        user_model.objects.create_superuser(username=DEMO_ADMIN, email="", password=password)
        if password != stored:
            _write_secret(path, password)
        return password, True
    if stored and user.check_password(stored):
        return stored, False
    # Someone set this user's password themselves; the demo does not overwrite it.
    return None, False


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _write_secret(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by the owner only (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.replace(tmp, path)
