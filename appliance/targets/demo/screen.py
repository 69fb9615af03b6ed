"""Drawing the demo BIOS screen: geometry (also used for mouse hit-testing) and rendering.

The screen is laid out on an 80x25 character grid like a text-mode BIOS, scaled to the frame
size, so 1280x720 and 1920x1080 show the same picture. Drawing works from an immutable
:class:`View` snapshot, so it can run in a worker thread while the event loop keeps changing the
machine's state.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from capture.frame import Image

Rect = tuple[int, int, int, int]  # x, y, width, height
Colour = tuple[int, int, int]  # BGR

COLS, ROWS = 80, 25
FONT = cv2.FONT_HERSHEY_SIMPLEX

BLUE: Colour = (170, 0, 0)
DARK_BLUE: Colour = (96, 0, 0)
GREY: Colour = (192, 192, 192)
DIM: Colour = (150, 150, 150)
WHITE: Colour = (255, 255, 255)
BLACK: Colour = (0, 0, 0)
HIGHLIGHT: Colour = (160, 130, 0)
YELLOW: Colour = (0, 255, 255)
HELP: Colour = (255, 255, 160)
LED_ON: Colour = (0, 200, 0)
LED_OFF: Colour = (70, 70, 70)

LED_NAMES = ("NUM", "CAPS", "SCRL")  # bit 0, 1, 2 of the LED byte
TITLE = "ipkvm Demo BIOS Setup Utility"
LEGEND = (
    "<- ->  Select Screen",
    "Up/Dn  Select Item",
    "Enter  Select / Edit",
    "+/-    Change Value",
    "Esc    End Editing",
)


@dataclass(frozen=True, slots=True)
class ItemView:
    name: str
    kind: str
    value: str
    selectable: bool


@dataclass(frozen=True, slots=True)
class View:
    """Everything visible on the screen except the pointer."""

    tab: int
    items: tuple[ItemView, ...]
    selected: int
    editing: bool
    help: str
    message: str
    leds: int
    cd: str | None = None
    """The volume label of the CD the machine booted from (its screen then shows that)."""


def printable(text: str) -> str:
    """Text as drawn: control characters become '?'. OpenCV 5 draws Unicode (ä, é, €) itself."""
    return "".join(c if c.isprintable() else "?" for c in text)


class Geometry:
    """Pixel positions of everything on a *width* x *height* screen."""

    def __init__(self, width: int, height: int, tab_names: tuple[str, ...]) -> None:
        self.width, self.height = width, height
        self.cw, self.ch = width / COLS, height / ROWS
        self.scale = self.ch * 0.6 / 28.8
        self.thickness = 1 if height < 1000 else 2
        self.tab_names = tab_names
        self.tabs: list[Rect] = []
        x = round(2 * self.cw)
        for name in tab_names:
            w = self.text_width(name) + round(2 * self.cw)
            self.tabs.append((x, round(self.ch), w, round(self.ch)))
            x += w

    def text_width(self, text: str) -> int:
        (w, _), _ = cv2.getTextSize(printable(text), FONT, self.scale, self.thickness)
        return int(w)

    def cell(self, col: float, row: float) -> tuple[int, int]:
        return round(col * self.cw), round(row * self.ch)

    def row_rect(self, row: float, col0: float, col1: float) -> Rect:
        x0, y0 = self.cell(col0, row)
        x1, y1 = self.cell(col1, row + 1)
        return x0, y0, x1 - x0, y1 - y0

    def item_rect(self, index: int) -> Rect:
        """The highlight bar of item *index* on the current tab (click target)."""
        return self.row_rect(3 + index, 1, 55)

    def field_rect(self, index: int) -> Rect:
        """The value area of item *index* (the text field box for the Asset Tag)."""
        return self.row_rect(3 + index, 25.5, 55)

    def led_rect(self, bit: int) -> Rect:
        return self.row_rect(ROWS - 1, 63 + 5.5 * bit, 63 + 5.5 * bit + 5)

    def item_at(self, x: int, y: int, count: int) -> int | None:
        for i in range(count):
            if _inside(self.item_rect(i), x, y):
                return i
        return None

    def tab_at(self, x: int, y: int) -> int | None:
        for i, rect in enumerate(self.tabs):
            if _inside(rect, x, y):
                return i
        return None


def _inside(rect: Rect, x: int, y: int) -> bool:
    rx, ry, rw, rh = rect
    return rx <= x < rx + rw and ry <= y < ry + rh


class Painter:
    """Draws :class:`View` snapshots for one geometry."""

    def __init__(self, geometry: Geometry, name: str = "") -> None:
        self.g = geometry
        self.name = name
        """The machine's name (a port of the demo switch), drawn in the bottom bar."""
        self._base = self._background()

    def _text(self, image: Image, text: str, x: int, row_top: int, colour: Colour) -> None:
        baseline = row_top + round(self.g.ch * 0.68)
        cv2.putText(
            image,
            printable(text),
            (x, baseline),
            FONT,
            self.g.scale,
            colour,
            self.g.thickness,
            cv2.LINE_8,  # not LINE_AA: 20x faster with OpenCV 5's font engine, BIOS-crisp anyway
        )

    def _fill(self, image: Image, rect: Rect, colour: Colour) -> None:
        x, y, w, h = rect
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), colour, cv2.FILLED)

    def _background(self) -> Image:
        """Everything that never changes, drawn once: each screen starts as a copy of it."""
        g = self.g
        image = np.zeros((g.height, g.width, 3), np.uint8)
        self._fill(image, (0, 0, g.width, g.height), BLUE)
        self._fill(image, g.row_rect(0, 0, COLS), GREY)
        self._text(image, TITLE, (g.width - g.text_width(TITLE)) // 2, 0, DARK_BLUE)
        top = round(2 * g.ch) + 2
        bottom = round((ROWS - 1) * g.ch) - 2
        divider = round(56 * g.cw)
        cv2.rectangle(image, (2, top), (g.width - 3, bottom), GREY, 1)
        cv2.line(image, (divider, top), (divider, bottom), GREY, 1)
        for i, line in enumerate(LEGEND):
            self._text(image, line, round(57 * g.cw), round((16 + i) * g.ch), WHITE)
        self._fill(image, g.row_rect(ROWS - 1, 0, COLS), GREY)
        self._text(
            image, "Version 2.0  ipkvm demo target", round(2 * g.cw), round(24 * g.ch), DARK_BLUE
        )
        if self.name:
            label = f"Machine: {self.name}"
            x = g.width - g.text_width(label) - round(2 * g.cw)
            self._text(image, label, x, round(24 * g.ch), DARK_BLUE)
        return image

    def screen(self, view: View) -> Image:
        if view.cd is not None:
            return self.cd_screen(view.cd)
        g = self.g
        image = self._base.copy()
        for i, (name, rect) in enumerate(zip(g.tab_names, g.tabs, strict=True)):
            if i == view.tab:
                self._fill(image, rect, GREY)
            colour = DARK_BLUE if i == view.tab else WHITE
            self._text(image, name, rect[0] + round(g.cw), rect[1], colour)
        for i, item in enumerate(view.items):
            self._item(image, i, item, i == view.selected, view.editing)
        if view.message:
            self._text(image, view.message, round(2 * g.cw), round(21.5 * g.ch), YELLOW)
        row = 3.0
        for line in self._wrap(view.help, round(22 * g.cw)):
            self._text(image, line, round(57 * g.cw), round(row * g.ch), HELP)
            row += 1
        for bit, name in enumerate(LED_NAMES):
            rect = g.led_rect(bit)
            on = bool(view.leds & (1 << bit))
            self._fill(image, rect, LED_ON if on else LED_OFF)
            x = rect[0] + (rect[2] - g.text_width(name)) // 2
            self._text(image, name, x, rect[1], BLACK if on else DIM)
        return image

    def cd_screen(self, label: str) -> Image:
        """What a machine that booted from a CD shows: the disc's volume label, large and plain
        (white on black, like a boot loader), so a person or OCR reads it off the video."""
        g = self.g
        image = np.zeros((g.height, g.width, 3), np.uint8)
        self._text(image, "Booting from CD-ROM...", round(4 * g.cw), round(4 * g.ch), GREY)
        self._text(
            image, f"Volume: {label or '(no label)'}", round(4 * g.cw), round(6 * g.ch), WHITE
        )
        if self.name:
            self._text(image, f"Machine: {self.name}", round(4 * g.cw), round(8 * g.ch), DIM)
        return image

    def _item(self, image: Image, i: int, item: ItemView, selected: bool, editing: bool) -> None:
        g = self.g
        rect = g.item_rect(i)
        if selected:
            self._fill(image, rect, HIGHLIGHT)
        label_colour = WHITE if item.selectable else DIM
        self._text(image, item.name, rect[0] + round(g.cw), rect[1], label_colour)
        field = g.field_rect(i)
        if item.kind == "text":
            editing_here = selected and editing
            self._fill(image, field, BLACK if editing_here else DARK_BLUE)
            shown = item.value + ("_" if editing_here else "")
            limit = field[2] - round(g.cw)
            while shown and g.text_width(shown) > limit:
                shown = shown[1:]  # keep the end (where typing happens) visible
            colour = YELLOW if editing_here else WHITE
            self._text(image, shown, field[0] + round(g.cw / 2), field[1], colour)
        elif item.kind in ("choice", "info"):
            shown = f"[{item.value}]" if item.kind == "choice" else item.value
            colour = WHITE if item.kind == "choice" else DIM
            self._text(image, shown, field[0] + round(g.cw / 2), field[1], colour)

    def _wrap(self, text: str, width: int) -> list[str]:
        lines: list[str] = []
        line = ""
        for word in text.split():
            candidate = f"{line} {word}".strip()
            if line and self.g.text_width(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        if line:
            lines.append(line)
        return lines

    def pointer(self, image: Image, x: int, y: int) -> None:
        """An arrow with its tip exactly at (x, y): white, outlined in black."""
        s = self.g.height / 720
        shape = [(0, 0), (0, 16), (4, 12), (7, 19), (10, 18), (7, 11), (12, 11)]
        pts = np.array([(x + round(px * s), y + round(py * s)) for px, py in shape], np.int32)
        cv2.fillPoly(image, [pts], WHITE)
        cv2.polylines(image, [pts], True, BLACK, 1)
