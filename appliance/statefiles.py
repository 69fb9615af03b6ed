"""Files in the state directory keep the service's owner, whoever writes them.

Why: the CLI runs as root on the appliance (``sudo ipkvm token create``, ``ipkvm user add``, the
system test's runner), the service as ``ipkvm``; a file root creates there (a token store, the
audit log's first line) would lock the service out of its own state. The system test found it:
every audited request logged "Permission denied" after the runner created a token as root.
"""

from __future__ import annotations

import os
from pathlib import Path


def chown_like_dir(fd: int, directory: Path) -> None:
    """Run as root, give the open file ``fd`` the owner of ``directory`` (unless that is root)."""
    if os.geteuid() != 0:
        return
    st = os.stat(directory)
    if st.st_uid != 0:
        os.fchown(fd, st.st_uid, st.st_gid)
