"""``ipkvm gadget setup|teardown|status``: the USB gadget from the command line.

Only the standard library at top level (this module is imported to build ``ipkvm --help``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hid.gadget import GadgetStatus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["setup", "teardown", "status"])
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/sys/kernel/config/usb_gadget"),
        help="configfs usb_gadget directory (default: %(default)s)",
    )
    parser.add_argument("--name", default="ipkvm", help="gadget name (default: %(default)s)")
    parser.add_argument(
        "--udc",
        default="auto",
        help="UDC to bind: a name, 'auto' (first in --udc-dir) or 'none' (build, do not bind)",
    )
    parser.add_argument(
        "--udc-dir",
        type=Path,
        default=Path("/sys/class/udc"),
        help="where UDCs are listed (default: %(default)s)",
    )
    parser.add_argument(
        "--mass-storage",
        action="store_true",
        help="add a virtual-media LUN (default: HID only, which some UEFI firmwares need)",
    )
    parser.add_argument("--json", action="store_true", help="status as JSON")


def run(args: argparse.Namespace) -> int:
    from appliance.cli import CliError
    from hid import gadget

    cfg = gadget.GadgetConfig(
        root=args.root,
        name=args.name,
        udc_dir=args.udc_dir,
        mass_storage=gadget.MassStorage() if args.mass_storage else None,
    )
    if args.action != "status":
        _check_access(args.root, CliError)
    try:
        if args.action == "setup":
            udc = None if args.udc == "none" else args.udc
            devices = gadget.setup(cfg, udc=udc)
            st = gadget.status(cfg)
            print(f"gadget {cfg.name} at {cfg.path}: UDC {st.udc or '(not bound)'}")
            for fn, dev in devices.items():
                print(f"  {fn:<10} {dev}")
        elif args.action == "teardown":
            gadget.teardown(cfg)
            print(f"gadget {cfg.name} removed")
        else:
            st = gadget.status(cfg)
            if args.json:
                print(json.dumps(st.as_dict(), indent=2))
            else:
                _print_status(st)
            return 0 if st.exists else 1
    except gadget.GadgetError as exc:
        raise CliError(str(exc)) from exc
    return 0


def _check_access(root: Path, error: type[Exception]) -> None:
    """Name the usual causes before touching anything: configfs missing, not root."""
    if not root.is_dir():
        raise error(
            f"{root} not found: configfs not mounted or libcomposite not loaded "
            "(modprobe libcomposite; mount -t configfs none /sys/kernel/config)"
        )
    if not os.access(root, os.W_OK):
        raise error(f"cannot write {root}: run as root")


def _print_status(st: GadgetStatus) -> None:
    if not st.exists:
        print(f"gadget {st.name}: not set up ({st.path} missing)")
        return
    print(f"gadget {st.name} at {st.path}")
    print(f"  UDC:       {st.udc or '(not bound)'}")
    print(f"  state:     {st.state or '-'}")
    print(f"  functions: {', '.join(st.functions) or '-'}")
    for fn, dev in st.devices.items():
        print(f"  {fn:<10} {dev}")
    if st.medium is not None:
        print(f"  medium:    {st.medium or '(none)'}")
