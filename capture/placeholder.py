"""Generated frames that tell the viewer why there is no picture.

A viewer that sees a black rectangle cannot tell a dead cable from a slow start; a frame that
says "No capture device at /dev/video0" answers the first support question on the screen itself.
"""

from __future__ import annotations

import cv2
import numpy as np

from capture.frame import Image

BACKGROUND = (40, 32, 32)
TITLE_COLOUR = (255, 255, 255)
DETAIL_COLOUR = (190, 190, 190)


def message_image(width: int, height: int, title: str, detail: str = "") -> Image:
    """A dark frame of the given size with *title* centred and *detail* below it."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    scale = max(height / 720.0, 0.3)
    font = cv2.FONT_HERSHEY_SIMPLEX
    _centred(image, title, height // 2 - int(10 * scale), 1.4 * scale, 2, TITLE_COLOUR, font)
    if detail:
        _centred(image, detail, height // 2 + int(40 * scale), 0.7 * scale, 1, DETAIL_COLOUR, font)
    return image


def _centred(
    image: Image,
    text: str,
    baseline: int,
    scale: float,
    thickness: int,
    colour: tuple[int, int, int],
    font: int,
) -> None:
    width = image.shape[1]
    (tw, _), _ = cv2.getTextSize(text, font, scale, thickness)
    if tw > width - 20:  # too long: shrink to fit rather than cut the reason off
        scale *= (width - 20) / tw
        (tw, _), _ = cv2.getTextSize(text, font, scale, thickness)
    x = max((width - tw) // 2, 10)
    cv2.putText(image, text, (x, baseline), font, scale, colour, thickness, cv2.LINE_AA)
