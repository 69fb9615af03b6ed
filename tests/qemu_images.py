"""Tiny boot images for the QEMU target tests, built by the tests themselves (GNU as, xorriso).

The boot sector clears the screen, prints a banner on the screen and on COM1, then echoes every
key it reads with BIOS int 16h to both (int 10h teletype, int 14h serial): what the guest
received, in order, can be read back exactly from the serial log. A ``#`` switches the screen
from 80x25 text (720x400) to 320x200 graphics (mode 13h, which QEMU's VGA shows as 640x400):
a resolution change on demand.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ECHO_SOURCE = r"""
.code16
.globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    sti
    mov $0x0003, %ax        # 80x25 text mode: clears the screen
    int $0x10
    mov $0x00e3, %ax        # COM1 at 9600 8N1
    xor %dx, %dx
    int $0x14
    mov $banner, %si
1:  lodsb
    test %al, %al
    jz 2f
    call putc
    jmp 1b
2:  xor %ah, %ah            # wait for a key: AL = its character
    int $0x16
    cmp $0x23, %al          # '#': switch to mode 13h graphics, echo it there
    jne 3f
    push %ax
    mov $0x0013, %ax
    int $0x10
    pop %ax
3:  call putc
    jmp 2b
putc:
    push %ax
    mov $0x0e, %ah
    mov $0x0007, %bx
    int $0x10
    pop %ax
    push %ax
    mov $0x01, %ah
    xor %dx, %dx
    int $0x14
    pop %ax
    ret
banner: .asciz "BANNER\r\n"
.org 510
.word 0xaa55
"""


def tools_missing() -> str | None:
    """Why the images cannot be built here (None: they can)."""
    for tool, package in (("as", "binutils"), ("ld", "binutils"), ("xorriso", "xorriso")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {package})"
    return None


def boot_sector(work: Path, banner: str) -> bytes:
    """The echo boot sector (512 bytes) printing *banner* first."""
    work.mkdir(parents=True, exist_ok=True)
    source = work / "echo.s"
    source.write_text(ECHO_SOURCE.replace("BANNER", banner))
    subprocess.run(["as", "--32", "-o", work / "echo.o", source], check=True)
    link = ["ld", "-m", "elf_i386", "-Ttext", "0x7c00", "--oformat", "binary", "-o"]
    subprocess.run([*link, work / "echo.bin", work / "echo.o"], check=True)
    data = (work / "echo.bin").read_bytes()
    assert len(data) == 512 and data[-2:] == b"\x55\xaa"
    return data


def echo_disk(work: Path, banner: str) -> Path:
    """A 1 MiB raw disk whose MBR is the echo boot sector."""
    path = work / "echo.img"
    path.write_bytes(boot_sector(work, banner).ljust(1 << 20, b"\0"))
    return path


def echo_iso(work: Path, banner: str) -> Path:
    """An El Torito (no emulation) ISO booting the echo boot sector."""
    tree = work / "iso"
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "boot.bin").write_bytes(boot_sector(work / "asm", banner).ljust(2048, b"\0"))
    path = work / "echo.iso"
    mkisofs = ["xorriso", "-as", "mkisofs", "-quiet", "-b", "boot.bin", "-no-emul-boot"]
    subprocess.run(
        [*mkisofs, "-boot-load-size", "4", "-o", path, tree], check=True, capture_output=True
    )
    return path
