"""Root's CLI writing into the service's state directory leaves every file the service's.

Found by the system test: the runner's ``ipkvm token create`` (as root) created the audit log
root-owned 0600, and the service then failed to append every audited request.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.auth import AuthStore

SERVICE_UID, SERVICE_GID = 64123, 64123  # an unused id, like the appliance's ipkvm user


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to write as root and chown")
def test_files_root_writes_keep_the_directorys_owner(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, SERVICE_UID, SERVICE_GID)
    store = AuthStore(state)
    store.ensure_admin()
    store.create_token("ci")
    store.audit.record("token.create", user="cli", token="ci")
    files = sorted(p for p in state.iterdir() if p.is_file())
    names = {p.name for p in files}
    assert {"audit.jsonl", "tokens.json", "users.json", ".lock"} <= names, names
    wrong = {p.name: p.stat().st_uid for p in files if p.stat().st_uid != SERVICE_UID}
    assert not wrong, wrong
    assert all(p.stat().st_mode & 0o077 == 0 for p in files), "state files must stay private"
