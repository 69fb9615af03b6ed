#!/usr/bin/env python3
"""Copy a set of kernel modules and everything they depend on into a module tree.

Why: the qemu-x86_64 flavour (and its initrd) needs a dozen modules, not the 300 MB of a stock
Debian kernel. Reads ``modules.dep`` of the unpacked ``linux-image`` package, follows the
dependencies (and softdep ``pre:`` lines of modules.softdep), copies the files and runs depmod.

    kmods.py SRC_ROOT DEST_ROOT KVER MODULE...

SRC_ROOT and DEST_ROOT contain lib/modules/KVER. Unknown names (built-in or absent in this kernel)
are listed and skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEPMOD = shutil.which("depmod", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or "depmod"


def norm(name: str) -> str:
    return name.replace("-", "_")


def module_name(path: str) -> str:
    base = Path(path).name
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            return norm(base[: -len(ext)])
    return norm(base)


def main(argv: list[str]) -> int:
    src, dest, kver, *wanted = argv[1:]
    mdir = Path(src) / "lib/modules" / kver
    if not (mdir / "modules.dep").exists():  # the .deb leaves it to its postinst
        subprocess.run([DEPMOD, "-b", src, kver], check=True)
    deps: dict[str, tuple[str, list[str]]] = {}
    for line in (mdir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[module_name(path)] = (path, rest.split())
    soft: dict[str, list[str]] = {}
    softdep = mdir / "modules.softdep"
    if softdep.exists():
        for line in softdep.read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[0] == "softdep":
                names = [p for p in parts[2:] if not p.endswith(":")]
                soft[norm(parts[1])] = names
    builtin = set()
    if (mdir / "modules.builtin").exists():
        builtin = {module_name(p) for p in (mdir / "modules.builtin").read_text().split()}
    todo = [norm(w) for w in wanted]
    seen: set[str] = set()
    missing = []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in deps:
            if name not in builtin:
                missing.append(name)
            continue
        path, needs = deps[name]
        todo += [module_name(n) for n in needs]
        todo += [norm(n) for n in soft.get(name, []) if norm(n) in deps]
        target = Path(dest) / "lib/modules" / kver / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(mdir / path, target)
    out = Path(dest) / "lib/modules" / kver
    for extra in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (mdir / extra).exists():
            shutil.copy2(mdir / extra, out / extra)
    subprocess.run([DEPMOD, "-b", dest, kver], check=True)
    if missing:
        print(f"kmods: not in this kernel: {' '.join(sorted(missing))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
