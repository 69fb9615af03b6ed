"""Screen matching on a real FrameHub: template matching finds where a picture is, waits check
only changed frames and time out with the best score; OCR (real tesseract) reads rendered text."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.scripting import screen
from appliance.targets.demo.machine import DemoMachine
from capture.frame import Image
from capture.hub import FrameHub
from hid.reports import keyboard_report

needs_tesseract = pytest.mark.skipif(
    screen.tesseract_path() is None,
    reason="tesseract is not installed (apt-get install tesseract-ocr; make test does it)",
)


def blue_screen(w: int = 640, h: int = 360) -> Image:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (170, 0, 0)  # BIOS blue (BGR)
    return img


def with_text(img: Image, text: str, at: tuple[int, int], scale: float = 1.0) -> Image:
    out = img.copy()
    cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def test_match_finds_the_template_where_it_is() -> None:
    img = with_text(blue_screen(), "Boot Menu", (300, 200))
    tpl = img[170:215, 290:460].copy()
    m = screen.match_template(img, tpl)
    assert (m.x, m.y, m.w, m.h) == (290, 170, 170, 45)
    assert m.score > 0.99
    # In a region that excludes it, the best score is poor.
    far = screen.match_template(img, tpl, region=(0, 0, 280, 160))
    assert far.score < 0.5
    assert far.x + far.w <= 280


def test_bad_templates_and_regions() -> None:
    with pytest.raises(screen.ScreenError, match="decodable"):
        screen.decode_png(b"not an image")
    ok, flat = cv2.imencode(".png", np.full((10, 10, 3), 9, np.uint8))
    assert ok
    with pytest.raises(screen.ScreenError, match="flat colour"):
        screen.decode_png(flat.tobytes())
    img = blue_screen()
    with pytest.raises(screen.ScreenError, match="outside"):
        screen.match_template(img, img[0:10, 0:10], region=(600, 300, 100, 100))
    with pytest.raises(screen.ScreenError, match="larger"):
        screen.match_template(img, img, region=(0, 0, 100, 100))


async def test_wait_matches_on_a_later_changed_frame() -> None:
    hub = FrameHub()
    before = blue_screen()
    after = with_text(before, "Setup", (100, 100))
    tpl = after[60:115, 90:220].copy()
    hub.publish(before)
    waiter = asyncio.create_task(screen.wait_for_image(hub, tpl, timeout=5))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # the current frame does not match
    hub.publish(before)  # unchanged: must not count
    await asyncio.sleep(0.05)
    assert not waiter.done()
    hub.publish(after)
    m = await waiter
    assert (m.x, m.y) == (90, 60)
    assert m.as_dict()["found"] is True


async def test_wait_times_out_with_best_score() -> None:
    hub = FrameHub()
    hub.publish(with_text(blue_screen(), "Main", (50, 50)))
    tpl = with_text(blue_screen(), "Exit", (50, 50))[20:65, 40:140].copy()
    with pytest.raises(screen.ScreenTimeout) as info:
        await screen.wait_for_image(hub, tpl, timeout=0.3)
    assert info.value.best_score is not None
    assert info.value.best_score < 0.9
    assert "timed out after 0.3 s" in str(info.value)


async def test_wait_with_no_frame_says_so() -> None:
    with pytest.raises(screen.ScreenTimeout, match="no frame arrived") as info:
        await screen.wait_for_image(FrameHub(), blue_screen()[:5, :5], timeout=0.1)
    assert info.value.best_score is None


def test_find_text_in_tsv_words() -> None:
    tsv = (
        "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
        "5\t1\t1\t1\t1\t1\t20\t40\t60\t20\t95\tipkvm\n"
        "5\t1\t1\t1\t1\t2\t90\t40\t60\t20\t91\tSetup\n"
        "5\t1\t1\t1\t1\t3\t160\t40\t80\t20\t89\tUtility\n"
        "5\t1\t2\t1\t1\t1\t20\t200\t40\t20\t90\tExit\n"
    )
    words = screen.parse_tsv(tsv, ox=10, oy=5, scale=2)
    m = screen.find_text(words, "setup   UTILITY")
    assert m is not None
    assert (m.x, m.y, m.w, m.h) == (10 + 45, 5 + 20, 75, 10)
    assert screen.find_text(words, "Setup Exit") is None  # different lines
    assert screen.similarity(words, "Setup Exit") == 1.0
    assert screen.similarity(words, "Boot Menu") == 0.0


# ------------------------------------------------------------ coarse-to-fine template matching
RIGHT_ARROW = 0x4F


def demo_screens(width: int, height: int) -> tuple[DemoMachine, Image, Image]:
    """The demo BIOS's Main tab and, after two presses of the right arrow, its Boot tab."""
    machine = DemoMachine(width, height)
    main = machine.render().copy()
    for _ in range(2):
        machine.feed(keyboard_report(0, [RIGHT_ARROW]))
        machine.feed(keyboard_report(0, []))
    boot = machine.render().copy()
    assert machine.state()["tab"] == "Boot"
    return machine, main, boot


def capture_like(image: Image) -> Image:
    """What a capture dongle delivers: JPEG blocks and a brightness shift."""
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.clip(decoded.astype(np.int16) + 6, 0, 255).astype(np.uint8)


def cuts(machine: DemoMachine, width: int, height: int) -> dict[str, tuple[int, int, int, int]]:
    """Distinctive rectangles of the Main screen, from a small icon to a large panel, several of
    them touching an edge of the picture (where the coarse grid and the windows are clipped)."""
    s = width / 1280
    ix, iy, iw, ih = machine.item_rect("Main", "System Language")
    return {
        "tab": machine.tab_rect("Main"),
        "item line": (ix, iy, iw // 2, ih),
        "cursor icon": (int(630 * s), int(355 * s), int(40 * s), int(30 * s)),
        "odd offset": (ix + 13, iy - 3, int(301 * s), ih + 5),
        "top-left corner": (0, 0, int(300 * s), int(60 * s)),
        "bottom-left corner": (0, height - int(35 * s), int(300 * s), int(35 * s)),
        "bottom-right LEDs": (
            width - int(290 * s),
            height - int(36 * s),
            int(290 * s),
            int(36 * s),
        ),
        "right-edge help": (width - int(375 * s), int(88 * s), int(375 * s), int(54 * s)),
        "large panel": (int(16 * s), int(80 * s), int(600 * s), int(300 * s)),
    }


def no_fallback(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count full searches inside match_template: the templates here must not need one."""
    calls: list[int] = []
    full = screen.match_template_full

    def counted(*args: object, **kwargs: object) -> screen.Match:
        calls.append(1)
        return full(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(screen, "match_template_full", counted)
    return calls


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
@pytest.mark.parametrize("degrade", [False, True], ids=["exact", "captured"])
def test_coarse_to_fine_finds_what_the_full_search_finds(
    size: tuple[int, int], degrade: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine, main, _ = demo_screens(*size)
    frame = capture_like(main) if degrade else main
    expected = {}
    for name, (x, y, w, h) in cuts(machine, *size).items():
        tpl = main[y : y + h, x : x + w].copy()
        expected[name] = (tpl, (x, y), screen.match_template_full(frame, tpl))
    calls = no_fallback(monkeypatch)
    for name, (tpl, at, full) in expected.items():
        prepared = screen.prepare_template(tpl)
        assert prepared.factor > 1, name  # the coarse stage really runs
        fast = screen.match_template(frame, prepared, threshold=0.9)
        assert (fast.x, fast.y, fast.w, fast.h) == (full.x, full.y, full.w, full.h), name
        assert (fast.x, fast.y) == at, name
        assert fast.score == pytest.approx(full.score, abs=1e-3), name
        assert fast.score > (0.93 if degrade else 0.999), name
    assert not calls


def test_coarse_to_fine_inside_a_region() -> None:
    machine, main, _ = demo_screens(1280, 720)
    x, y, w, h = machine.item_rect("Main", "Quiet Boot")
    tpl = main[y : y + h, x : x + w // 2].copy()
    region = (x + 5 - 5, y - 40, w // 2 + 90, h + 70)
    fast = screen.match_template(main, tpl, region=region)
    full = screen.match_template_full(main, tpl, region=region)
    assert (fast.x, fast.y, fast.w, fast.h) == (full.x, full.y, full.w, full.h) == (x, y, w // 2, h)
    assert fast.score == pytest.approx(full.score, abs=1e-3)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_an_absent_template_is_not_found(size: tuple[int, int]) -> None:
    machine, main, boot = demo_screens(*size)
    for item in ("Boot Mode", "Fast Boot", "Boot NumLock State"):
        x, y, w, h = machine.item_rect("Boot", item)
        tpl = boot[y : y + h, x : x + w].copy()
        assert screen.prepare_template(tpl).factor > 1
        full = screen.match_template_full(main, tpl)
        fast = screen.match_template(main, tpl, threshold=0.9)
        assert full.score < 0.9
        # A real full-resolution score, so never above the best the full search saw.
        assert fast.score < 0.9
        assert fast.score <= full.score + 1e-4
        assert fast.score == pytest.approx(
            screen.match_template_full(main, tpl, (fast.x, fast.y, fast.w, fast.h)).score, abs=1e-3
        )


def test_tiny_and_oversized_templates_behave_as_before() -> None:
    _, main, _ = demo_screens(1280, 720)
    tiny = main[95:101, 32:40].copy()  # a few pixels of "BIOS Vendor"
    assert screen.prepare_template(tiny).factor == 1
    assert screen.match_template(main, tiny) == screen.match_template_full(main, tiny)
    thin = main[86:94, 16:400].copy()  # long but 8 px tall: no coarse stage either
    assert screen.prepare_template(thin).factor == 1
    assert screen.match_template(main, thin) == screen.match_template_full(main, thin)
    with pytest.raises(screen.ScreenError, match="larger than the searched area 1280x720"):
        screen.match_template(main, np.vstack([main, main[:10]]))
    with pytest.raises(screen.ScreenError, match="larger than the searched area 1280x720"):
        screen.match_template_full(main, np.hstack([main, main[:, :10]]))
    # The whole frame as its own template: one position, found exactly.
    whole = screen.match_template(main, main)
    assert (whole.x, whole.y, whole.w, whole.h) == (0, 0, 1280, 720)
    assert whole.score > 0.999


def test_a_flat_colour_template_is_refused_whatever_the_colour() -> None:
    ok, png = cv2.imencode(".png", blue_screen(20, 10))
    assert ok
    with pytest.raises(screen.ScreenError, match="flat colour"):
        screen.decode_png(png.tobytes())


async def test_wait_finds_a_demo_template_once_the_screen_changes() -> None:
    machine, main, boot = demo_screens(1280, 720)
    x, y, w, h = machine.item_rect("Boot", "Boot Mode")
    tpl = boot[y : y + h, x : x + w].copy()
    hub = FrameHub()
    hub.publish(main)
    waiter = asyncio.create_task(screen.wait_for_image(hub, tpl, timeout=5))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    hub.publish(boot)
    found = await waiter
    assert (found.x, found.y, found.w, found.h) == (x, y, w, h)
    assert found.score > 0.999


@needs_tesseract
async def test_ocr_reads_rendered_text() -> None:
    img = with_text(blue_screen(960, 360), "Press F2 to enter Setup", (60, 200), 1.2)
    words = await screen.ocr_words(img)
    m = screen.find_text(words, "enter Setup")
    assert m is not None, [w.text for w in words]
    # The box is where the text was drawn (baseline y=200, about 30 px tall).
    assert 150 < m.y < 200 < m.y + m.h + 10
    assert m.x > 200


@needs_tesseract
async def test_wait_for_text_on_a_hub() -> None:
    hub = FrameHub()
    hub.publish(blue_screen(960, 360))
    waiter = asyncio.create_task(screen.wait_for_text(hub, "Boot Menu", timeout=30))
    await asyncio.sleep(0.1)
    hub.publish(with_text(blue_screen(960, 360), "Boot Menu", (100, 120), 1.2))
    m = await waiter
    assert 80 <= m.x <= 110


async def test_wait_for_text_without_tesseract_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(screen.NoOcr, match="apt-get install tesseract-ocr"):
        await screen.wait_for_text(FrameHub(), "x", timeout=1)


@pytest.fixture
def counted_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real tesseract behind a wrapper that logs the pid of each run (exec keeps the pid)."""
    real = screen.tesseract_path()
    assert real is not None
    log = tmp_path / "runs.log"
    shim = tmp_path / "bin" / "tesseract"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho $$ >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}:{os.environ['PATH']}")
    return log


def pids(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs_tesseract
async def test_concurrent_text_waits_share_one_ocr_run(counted_tesseract: Path) -> None:
    hub = FrameHub()
    hub.publish(with_text(blue_screen(960, 360), "Boot Menu", (100, 120), 1.2))
    a, b = await asyncio.gather(
        screen.wait_for_text(hub, "Boot Menu", timeout=30),
        screen.wait_for_text(hub, "boot menu", timeout=30),
    )
    assert a == b
    assert len(pids(counted_tesseract)) == 1


@needs_tesseract
async def test_a_wait_that_gives_up_kills_tesseract(counted_tesseract: Path) -> None:
    hub = FrameHub()
    page = blue_screen(1920, 1080)
    for i in range(30):  # a full page of text: about 5 s of OCR on the development machine
        page = with_text(
            page, f"Line {i} lorem ipsum dolor sit amet consectetur", (20, 30 + i * 35)
        )
    hub.publish(page)
    with pytest.raises(screen.ScreenTimeout):
        await screen.wait_for_text(hub, "Press F2", timeout=0.5)
    left = [run.task for run in screen._ocr_runs.values()]
    if left:  # the cancelled run is killing and reaping its subprocess: a moment, not seconds
        async with asyncio.timeout(2.5):
            await asyncio.wait(left)
    assert not screen._ocr_runs
    started = pids(counted_tesseract)
    assert len(started) == 1
    assert not alive(started[0])
