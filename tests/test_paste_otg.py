"""A long paste through the real otg backend: 10 000 characters of printable ASCII written to a
hidg-like FIFO decode back, on a simulated host with the same layout, to the identical text."""

from __future__ import annotations

import os
import random
import string
from pathlib import Path

import pytest

from hid.controller import HidController, Pacing
from hid.host import decode_reports
from hid.layouts import get_layout
from hid.otg import OtgOutput
from tests.test_otg import FifoHost


@pytest.mark.parametrize("layout", ["us", "gb", "de", "fr"])
async def test_ten_thousand_ascii_characters_arrive_intact(tmp_path: Path, layout: str) -> None:
    rng = random.Random(f"paste-{layout}")
    alphabet = string.printable[:95]  # every printable ASCII character, space included
    text = "".join(rng.choice(alphabet) for _ in range(10_000))
    paths = [tmp_path / name for name in ("hidg0", "hidg1", "hidg2")]
    for path in paths:
        os.mkfifo(path)
    host = FifoHost(paths[0])
    mice = [FifoHost(paths[1], 7), FifoHost(paths[2], 5)]
    ctl = HidController(OtgOutput(*paths), discard_after=30)
    await ctl.start()
    try:
        result = await ctl.type_text(text, get_layout(layout), Pacing.fast())
        await ctl.drain()
    finally:
        await ctl.close(timeout=0.5)
    assert result.plan.untypable == []
    host.drain()  # everything written is in the pipe now: read the rest
    reports = host.reports
    assert decode_reports(reports, layout) == text
    assert reports[-1] == bytes(8)  # and nothing is left held
    for h in (host, *mice):
        h.close()
