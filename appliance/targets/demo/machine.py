"""The demo target: a simulated machine inside the process, showing a BIOS-setup-like screen.

It is driven by the very HID report bytes the appliance would write to /dev/hidg0: keyboard
reports are decoded by :class:`hid.host.HostKeyboard` with the target's layout, as a real host
would, and mouse reports move a pointer. So every test and demo through it exercises the real
input path, and what appears on the screen is what a real machine would have understood.

Threading: ``feed``/``set_power`` run in the event loop; ``render`` may run in a worker thread.
State changes take a short lock; rendering works from a snapshot taken under that lock, so the
loop never waits for a render. Renders are cached: an unchanged screen costs a lookup, a pointer
move costs one copy plus the arrow, and only other changes redraw the screen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from appliance.targets.boot import BootSettings
from appliance.targets.demo.menu import TEXT_MAX, Item, Tab, default_tabs
from appliance.targets.demo.screen import Geometry, ItemView, Painter, Rect, View
from capture.frame import Image
from capture.stamp import draw_stamp, stamp_clock_ms
from hid.host import HostKeyboard, KeyEvent
from hid.reports import ABS_MAX, Report, ReportKind
from hid.text import LALT, LCTRL, LGUI, RCTRL, RGUI

__all__ = ["DemoMachine", "abs_for_pixel"]

log = logging.getLogger(__name__)

LedCallback = Callable[[int], None]

RESOLUTIONS = ((1280, 720), (1920, 1080))

# HID usages (Keyboard page) the menus react to.
ENTER, ESCAPE, BACKSPACE = 0x28, 0x29, 0x2A
HOME, PAGE_UP, END, PAGE_DOWN = 0x4A, 0x4B, 0x4D, 0x4E
RIGHT, LEFT, DOWN, UP = 0x4F, 0x50, 0x51, 0x52
KP_ENTER, KP_MINUS, KP_PLUS = 0x58, 0x56, 0x57
SHORTCUT_MODS = LCTRL | RCTRL | LALT | LGUI | RGUI


def pixel_for_abs(value: int, size: int) -> int:
    """Where an absolute coordinate (0..32767) lands on an axis of *size* pixels."""
    return round(min(max(value, 0), ABS_MAX) * (size - 1) / ABS_MAX)


def abs_for_pixel(pixel: int, size: int) -> int:
    """The absolute coordinate that lands exactly on *pixel* (inverse of pixel_for_abs)."""
    return round(min(max(pixel, 0), size - 1) * ABS_MAX / (size - 1))


def _int8(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


class DemoMachine:
    """A BIOS setup screen that reacts to HID reports. Use from one event loop."""

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        layout: str = "us",
        stamp: bool = False,
        name: str = "",
        boot: BootSettings | None = None,
    ) -> None:
        if (width, height) not in RESOLUTIONS:
            raise ValueError(f"demo resolution {width}x{height} not in {RESOLUTIONS}")
        self.width, self.height = width, height
        self.layout = layout
        self.stamp = stamp
        self.name = name  # shown on the screen: which port of the demo switch this is
        self._keyboard = HostKeyboard(layout)  # validates the layout name now
        self._tabs: list[Tab] = default_tabs()
        self._asset_tag: Item = next(i for t in self._tabs for i in t.items if i.kind == "text")
        self._geometry = Geometry(width, height, tuple(t.name for t in self._tabs))
        self._painter = Painter(self._geometry, name)
        self._power = True
        self.boot = boot if boot is not None else BootSettings()
        """The boot override Redfish sets; taken each time the machine powers on."""
        self.cd_label: Callable[[], str | None] = lambda: None
        """The ISO 9660 volume label of the CD in the machine's drive (None: no CD), wired by
        the target to its media facet: what the machine shows when it boots from CD."""
        self._booted: str | None = None  # the label of the CD it booted from, while it runs
        self._tab = 0
        self._selected = self._tabs[0].default_item
        self._editing = False
        self._message = ""
        self._x, self._y = width // 2, height // 2
        self._buttons = 0
        self._led_callbacks: list[LedCallback] = []
        self._activity_callbacks: list[Callable[[], None]] = []
        self.reports = 0  # reports accepted, for statistics
        self.malformed = 0  # reports of the wrong length, ignored like a host would
        self.frames = 0  # stamped frames rendered (the stamp's counter)
        # Render state: _version counts visible changes other than the pointer.
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._version = 0
        self._screen: tuple[int, Image] | None = None
        self._frame: tuple[tuple[int, int, int, bool], Image] | None = None
        self._black = np.zeros((height, width, 3), np.uint8)

    def set_name(self, name: str) -> None:
        """Rename (a port of the demo switch was renamed): the screen shows the new name."""
        if name == self.name:
            return
        painter = Painter(self._geometry, name)  # draws its background: outside the lock
        with self._lock:
            self.name = name
            self._painter = painter
            self._screen = None
            self._version += 1

    # ------------------------------------------------------------------ power and LEDs
    @property
    def power(self) -> bool:
        return self._power

    def set_power(self, on: bool) -> None:
        """Switch the machine; either way it comes back to a freshly booted setup screen."""
        if on == self._power:
            return
        booted = None
        if on and self.boot.take() == "Cd":
            booted = self.cd_label()  # no CD: the firmware falls back to its setup screen
        with self._lock:
            self._power = on
            self._booted = booted
            self._keyboard = HostKeyboard(self.layout)
            self._tab = 0
            self._selected = self._tabs[0].default_item
            self._editing = False
            self._message = ""
            self._buttons = 0
            self._version += 1
        log.info(
            "demo target powered %s%s",
            "on" if on else "off",
            f", booted from CD {booted!r}" if booted is not None else "",
        )
        self._leds_changed()

    @property
    def leds(self) -> int:
        return self._keyboard.leds

    def on_leds(self, callback: LedCallback) -> Callable[[], None]:
        """Call *callback(led_byte)* whenever the host changes its keyboard LEDs."""
        self._led_callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._led_callbacks:
                self._led_callbacks.remove(callback)

        return unsubscribe

    def _leds_changed(self) -> None:
        leds = self._keyboard.leds
        for callback in list(self._led_callbacks):
            try:
                callback(leds)
            except Exception:
                log.exception("LED callback failed")

    def on_activity(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback()* whenever the machine does some work (accepts a report): what its
        simulated HDD LED shows."""
        self._activity_callbacks.append(callback)
        return lambda: self._activity_callbacks.remove(callback)

    # ------------------------------------------------------------------ HID input
    def feed(self, report: Report) -> bool:
        """Take one HID report as the host would; False (ignored) when powered off."""
        if not self._power:
            return False
        self.reports += 1
        for callback in list(self._activity_callbacks):
            callback()
        if report.kind is ReportKind.KEYBOARD:
            if len(report.data) != 8:
                self.malformed += 1  # a real host drops what its descriptor does not describe
                return True
            leds_before = self._keyboard.leds
            with self._lock:
                events = self._keyboard.feed(report.data)
                self._keyboard.text = ""  # the host's transcript would grow forever
                for event in events:
                    if event.down:
                        self._key(event)
            if self._keyboard.leds != leds_before:
                with self._lock:
                    self._version += 1
                self._leds_changed()
        elif report.kind is ReportKind.MOUSE_ABS:
            d = report.data
            if len(d) < 5:
                self.malformed += 1
                return True
            x = pixel_for_abs(d[1] | d[2] << 8, self.width)
            y = pixel_for_abs(d[3] | d[4] << 8, self.height)
            self._mouse(d[0], x, y, _int8(d[5]) if len(d) > 5 else 0)
        elif report.kind is ReportKind.MOUSE_REL:
            d = report.data
            if len(d) < 3:
                self.malformed += 1
                return True
            x = min(max(self._x + _int8(d[1]), 0), self.width - 1)
            y = min(max(self._y + _int8(d[2]), 0), self.height - 1)
            self._mouse(d[0], x, y, _int8(d[3]) if len(d) > 3 else 0)
        return True

    def _key(self, event: KeyEvent) -> None:
        """Menu logic for one key press (lock held)."""
        if event.modifiers & SHORTCUT_MODS or self._booted is not None:
            return
        usage, char = event.usage, event.char
        typed = char if char is not None and len(char) >= 1 and char.isprintable() else None
        tab = self._tabs[self._tab]
        item = tab.items[self._selected]
        before = (self._tab, self._selected, self._editing, item.value, self._message)
        if item.kind == "text" and (self._editing or typed is not None or usage == BACKSPACE):
            if usage in (ENTER, KP_ENTER, ESCAPE) and self._editing:
                self._editing = False
            elif usage == BACKSPACE:
                self._editing = True
                item.value = item.value[:-1]
            elif typed is not None:
                self._editing = True
                item.value = (item.value + typed)[:TEXT_MAX]
        elif usage in (LEFT, RIGHT):
            self._select_tab((self._tab + (1 if usage == RIGHT else -1)) % len(self._tabs))
        elif usage in (UP, DOWN, HOME, END, PAGE_UP, PAGE_DOWN):
            self._move(usage)
        elif usage in (ENTER, KP_ENTER):
            self._activate()
        elif item.kind == "choice" and (typed in ("+", "-") or usage in (KP_PLUS, KP_MINUS)):
            step = 1 if typed == "+" or usage == KP_PLUS else -1
            index = item.options.index(item.value)
            item.value = item.options[(index + step) % len(item.options)]
        after = (self._tab, self._selected, self._editing, item.value, self._message)
        if after != before:
            self._version += 1

    def _select_tab(self, index: int) -> None:
        self._tab = index
        self._selected = self._tabs[index].default_item
        self._editing = False
        self._message = ""

    def _move(self, usage: int) -> None:
        items = self._tabs[self._tab].items
        selectable = [i for i, item in enumerate(items) if item.selectable]
        self._editing = False
        if usage in (HOME, PAGE_UP):
            self._selected = selectable[0]
        elif usage in (END, PAGE_DOWN):
            self._selected = selectable[-1]
        elif usage == UP:
            self._selected = max(
                [i for i in selectable if i < self._selected], default=selectable[0]
            )
        else:
            self._selected = min(
                [i for i in selectable if i > self._selected], default=selectable[-1]
            )

    def _activate(self) -> None:
        item = self._tabs[self._tab].items[self._selected]
        if item.kind == "text":
            self._editing = True
        elif item.kind == "choice":
            index = item.options.index(item.value)
            item.value = item.options[(index + 1) % len(item.options)]
        elif item.kind == "action":
            if item.name == "Load Setup Defaults":
                for tab in self._tabs:
                    for other in tab.items:
                        other.value = other.default
                self._message = "Setup defaults loaded."
            elif item.name == "Save Changes and Reset":
                self._message = "Changes saved. (The demo does not reset.)"
            else:
                self._message = "Changes discarded. (The demo stays in setup.)"

    def _mouse(self, buttons: int, x: int, y: int, wheel: int) -> None:
        with self._lock:
            pressed = buttons & ~self._buttons
            self._buttons = buttons
            self._x, self._y = x, y
            if pressed & 0x01:
                self._click(x, y)
            if wheel:
                self._move(UP if wheel > 0 else DOWN)
                self._version += 1

    def _click(self, x: int, y: int) -> None:
        """Left click: pick the tab or the item under the pointer (lock held)."""
        tab = self._geometry.tab_at(x, y)
        if tab is not None and tab != self._tab:
            self._select_tab(tab)
            self._version += 1
            return
        index = self._geometry.item_at(x, y, len(self._tabs[self._tab].items))
        if index is None or not self._tabs[self._tab].items[index].selectable:
            return
        if index != self._selected or self._editing:
            self._selected = index
            self._editing = False
            self._version += 1

    # ------------------------------------------------------------------ inspection
    def state(self) -> dict[str, object]:
        """What is on the screen, for tests, the API and scripts."""
        with self._lock:
            tab = self._tabs[self._tab]
            item = tab.items[self._selected]
            leds = self._keyboard.leds
            return {
                "power": "on" if self._power else "off",
                "tab": tab.name,
                "tab_index": self._tab,
                "selection": {
                    "tab": tab.name,
                    "tab_index": self._tab,
                    "item": item.name,
                    "index": self._selected,
                },
                "text": self._asset_tag.value,
                "editing": self._editing,
                "pointer": {"x": self._x, "y": self._y},
                "buttons": self._buttons,
                "leds": leds,
                "locks": {"num": bool(leds & 1), "caps": bool(leds & 2), "scroll": bool(leds & 4)},
                "message": self._message,
                "settings": {f"{t.name}/{i.name}": i.value for t in self._tabs for i in t.items},
                "layout": self.layout,
                "name": self.name,
                "booted_cd": self._booted,
                "width": self.width,
                "height": self.height,
            }

    def item_rect(self, tab: int | str, item: int | str) -> Rect:
        """Pixel rectangle (x, y, w, h) of an item's line, for clicking it and checking pixels."""
        t = self._tab_index(tab)
        items = self._tabs[t].items
        index = item if isinstance(item, int) else [i.name for i in items].index(item)
        return self._geometry.item_rect(index)

    def field_rect(self, tab: int | str, item: int | str) -> Rect:
        """Pixel rectangle of an item's value (the text field box for the Asset Tag)."""
        t = self._tab_index(tab)
        items = self._tabs[t].items
        index = item if isinstance(item, int) else [i.name for i in items].index(item)
        return self._geometry.field_rect(index)

    def tab_rect(self, tab: int | str) -> Rect:
        return self._geometry.tabs[self._tab_index(tab)]

    def led_rect(self, bit: int) -> Rect:
        """Pixel rectangle of LED indicator *bit* (0 Num, 1 Caps, 2 Scroll)."""
        return self._geometry.led_rect(bit)

    def _tab_index(self, tab: int | str) -> int:
        return tab if isinstance(tab, int) else [t.name for t in self._tabs].index(tab)

    # ------------------------------------------------------------------ rendering
    def cached_frame(self) -> Image | None:
        """The current frame if it needs no drawing at all (nothing changed, no stamp), else None.

        Cheap enough for the event loop; never waits for a render in progress.
        """
        if self.stamp and self._power:
            return None
        if not self._render_lock.acquire(blocking=False):
            return None
        try:
            with self._lock:
                key = (self._version, self._x, self._y, self._power)
            if not self._power:
                return self._black
            if self._frame is not None and self._frame[0] == key:
                return self._frame[1]
            return None
        finally:
            self._render_lock.release()

    def render(self) -> Image:
        """The current screen (a cached array when unchanged: callers must not modify it)."""
        with self._render_lock:
            with self._lock:
                power = self._power
                key = (self._version, self._x, self._y, power)
                view = None
                if power and (self._screen is None or self._screen[0] != self._version):
                    view = self._view()
            if not power:
                return self._black
            if view is not None:
                self._screen = (key[0], self._painter.screen(view))
            if self._frame is None or self._frame[0] != key:
                assert self._screen is not None
                frame = self._screen[1].copy()
                self._painter.pointer(frame, key[1], key[2])
                self._frame = (key, frame)
            image = self._frame[1]
            if not self.stamp:
                return image
            self.frames += 1
            stamped = image.copy()
            draw_stamp(stamped, self.frames, stamp_clock_ms())
            return stamped

    def _view(self) -> View:
        tab = self._tabs[self._tab]
        return View(
            tab=self._tab,
            items=tuple(ItemView(i.name, i.kind, i.value, i.selectable) for i in tab.items),
            selected=self._selected,
            editing=self._editing,
            help=tab.items[self._selected].help,
            message=self._message,
            leds=self._keyboard.leds,
            cd=self._booted,
        )
