"""The demo BIOS's menus: tabs, items and their defaults.

Kept apart from input handling and drawing so the content can grow without touching either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ItemKind = Literal["info", "text", "choice", "action"]
TEXT_MAX = 32  # characters the Asset Tag field accepts, like a fixed-size NVRAM string


@dataclass
class Item:
    """One line of a tab. ``info`` lines cannot be selected; ``text`` is edited by typing;
    ``choice`` cycles through ``options`` with Enter or +/-; ``action`` runs on Enter."""

    name: str
    kind: ItemKind
    value: str = ""
    options: tuple[str, ...] = ()
    help: str = ""
    default: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.kind == "choice" and not self.value:
            self.value = self.options[0]
        self.default = self.value

    @property
    def selectable(self) -> bool:
        return self.kind != "info"


@dataclass
class Tab:
    name: str
    items: list[Item]
    default_item: int = 0  # index selected when the tab is entered

    def first_selectable(self) -> int:
        return next(i for i, item in enumerate(self.items) if item.selectable)


def _choice(name: str, *options: str, help: str) -> Item:
    return Item(name, "choice", options=options, help=help)


def default_tabs() -> list[Tab]:
    """A fresh set of menus (each machine owns its own, values are mutable)."""
    main = Tab(
        "Main",
        [
            Item("BIOS Vendor", "info", "ipkvm"),
            Item("BIOS Version", "info", "2.0.0 (demo)"),
            Item("Total Memory", "info", "16384 MB"),
            Item(
                "Asset Tag",
                "text",
                help="Type to edit the asset tag. Backspace deletes. Enter or Esc ends editing.",
            ),
            _choice(
                "System Language",
                "English",
                "Deutsch",
                "Francais",
                "Espanol",
                help="Language of the setup screens.",
            ),
            _choice("Quiet Boot", "Enabled", "Disabled", help="Show a logo instead of POST text."),
        ],
        default_item=3,
    )
    advanced = Tab(
        "Advanced",
        [
            _choice("Virtualization (VT-x)", "Enabled", "Disabled", help="Hardware VM support."),
            _choice("Hyper-Threading", "Enabled", "Disabled", help="Two threads per core."),
            _choice("SATA Mode", "AHCI", "RAID", "IDE", help="Storage controller mode."),
            _choice(
                "USB Legacy Support", "Enabled", "Disabled", "Auto", help="USB keyboards in DOS."
            ),
            _choice("Wake on LAN", "Disabled", "Enabled", help="Power on by magic packet."),
        ],
    )
    boot = Tab(
        "Boot",
        [
            _choice("Boot Mode", "UEFI", "Legacy", "UEFI and Legacy", help="Firmware boot mode."),
            _choice(
                "Boot Option #1",
                "USB Virtual Media",
                "Hard Disk",
                "Network (PXE)",
                help="First device tried.",
            ),
            _choice(
                "Boot Option #2",
                "Hard Disk",
                "Network (PXE)",
                "USB Virtual Media",
                help="Second device tried.",
            ),
            _choice("Fast Boot", "Disabled", "Enabled", help="Skip some POST checks."),
            _choice("Boot NumLock State", "Off", "On", help="Num Lock after POST."),
        ],
    )
    security = Tab(
        "Security",
        [
            Item("Administrator Password", "info", "Not Installed"),
            _choice("Secure Boot", "Disabled", "Enabled", help="Only boot signed loaders."),
            _choice("TPM Device", "Enabled", "Disabled", help="Trusted Platform Module."),
        ],
        default_item=1,
    )
    exit_tab = Tab(
        "Exit",
        [
            Item("Save Changes and Reset", "action", help="Save the settings and restart."),
            Item("Discard Changes and Exit", "action", help="Leave without saving."),
            Item("Load Setup Defaults", "action", help="Restore every default value."),
        ],
    )
    return [main, advanced, boot, security, exit_tab]
