"""Screen matching for scripts: "wait until this picture / this text is on the target's screen".

Matching runs only when the picture changed (``FrameHub.next_frame(seq, changed_only=True)``), so a
static BIOS screen costs one match, not thirty a second. The CPU work — OpenCV ``matchTemplate``
with ``TM_CCOEFF_NORMED`` (a score in -1..1 that ignores uniform brightness shifts, which is what
a capture dongle's colour drift looks like) and the image preparation for OCR — runs in the
default thread pool. Template matching is coarse to fine (:func:`match_template`): a full-
resolution search of every position costs ~70 ms per 720p frame here and several times that on a
Raspberry Pi, so a waiting script would keep a core busy and notice its screen late. OCR itself
is the ``tesseract`` program run as an asyncio subprocess, so the event loop never blocks and a
stuck OCR run is killed when the wait ends.

Templates come from users, so :func:`load_template` checks the header against
:data:`appliance.imagecheck.TEMPLATE_LIMITS` on the event loop (microseconds; a decompression bomb
is refused before any decoder allocates), then decodes and prepares it in a one-thread pool of its
own, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from appliance import imagecheck
from capture.frame import Frame, Image
from capture.hub import FrameHub

MAX_TIMEOUT = 300.0
TESSERACT_HINT = "text matching needs tesseract (apt-get install tesseract-ocr)"
OCR_SCALE = 2  # tesseract reads 8x16 BIOS glyphs far better when they are twice as big


class ScreenError(ValueError):
    """Bad input for a wait (undecodable template, region outside the picture)."""


class NoOcr(ScreenError):
    """The ``tesseract`` program is not installed."""

    def __init__(self) -> None:
        super().__init__(TESSERACT_HINT)


class ScreenTimeout(TimeoutError):
    """Nothing matched in time; ``best_score`` is the closest any frame came (None: no frame)."""

    def __init__(self, message: str, best_score: float | None) -> None:
        super().__init__(message)
        self.best_score = best_score


@dataclass(frozen=True, slots=True)
class Match:
    """Where the template or text was found, in pixels of the captured frame."""

    x: int
    y: int
    w: int
    h: int
    score: float

    def as_dict(self) -> dict[str, object]:
        return {
            "found": True,
            "x": self.x,
            "y": self.y,
            "w": self.w,
            "h": self.h,
            "score": round(self.score, 4),
        }


Region = tuple[int, int, int, int]


TEMPLATE_LIMITS = imagecheck.TEMPLATE_LIMITS

_decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="template-decode")
"""Templates are decoded and prepared one at a time: each may take ~55 MB at its peak (a 4K PNG,
see ``TEMPLATE_LIMITS``), and the default pool would run min(32, cores + 4) = 6 of them at once on
a Raspberry Pi, 330 MB of a 512 MB board. Queued uploads wait instead; the event loop never does."""


def check_template(data: bytes) -> imagecheck.ImageInfo:
    """Header check of a template (format, size against ``TEMPLATE_LIMITS``) without decoding:
    cheap enough for the event loop. Raises :class:`ScreenError` naming size and limit."""
    try:
        return imagecheck.check(data, TEMPLATE_LIMITS)
    except imagecheck.ImageRejected as exc:
        raise ScreenError(str(exc)) from None


def decode_png(data: bytes) -> Image:
    """Decode a template (PNG or JPEG) into a BGR image, after :func:`check_template`.

    Blocks for up to about half a second at the size limit (4K on the development machine:
    40-450 ms for PNGs, 160 ms for a baseline JPEG): on the event loop, call
    :func:`load_template`, which runs this in a thread.
    EXIF orientation is ignored: a template is cut from the screen as the capture stores it, and
    rotating would cost a second copy and swap the checked width and height.
    """
    info = check_template(data)
    arr = cv2.imdecode(
        np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    if arr is None:
        raise ScreenError(f"template is not a decodable {info.format} image")
    if arr.shape[:2] != (info.height, info.width):  # the header reader and the decoder disagree
        raise ScreenError(f"template decodes to {arr.shape[1]}x{arr.shape[0]}, not {info.size}")
    image: Image = np.ascontiguousarray(arr, dtype=np.uint8)
    if _detail(image) == 0.0:
        # TM_CCOEFF_NORMED divides by the template's variance: a flat colour matches nothing.
        raise ScreenError("template is one flat colour; cut one that includes some detail")
    return image


def _decode_and_prepare(data: bytes) -> Template:
    return prepare_template(decode_png(data))


async def load_template(data: bytes) -> Template:
    """Check *data*'s header here (a bomb is refused at once, before it queues), then decode and
    prepare it (:func:`prepare_template`) in the template thread, off the event loop."""
    check_template(data)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_decoder, _decode_and_prepare, data)


def _crop(image: Image, region: Region | None) -> tuple[Image, int, int]:
    if region is None:
        return image, 0, 0
    x, y, w, h = region
    height, width = image.shape[:2]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ScreenError(f"region {list(region)} is outside the {width}x{height} picture")
    return image[y : y + h, x : x + w], x, y


COARSE_FACTORS = (4, 2)
"""Downscale factors tried for the coarse search, largest first (a coarse search costs about
1/factor^2 of a full one)."""
MIN_COARSE_SIDE = 10
"""A template's shorter side must keep this many pixels after downscaling: below that, BIOS glyphs
blur into a smear that matches any text line equally well (such templates use the full search,
which is cheap for them)."""
MIN_COARSE_STD = 4.0
"""A downscaled template whose grey levels vary less than this (standard deviation, out of 255)
has lost its detail (fine stripes average out, or colours of equal brightness); a smaller factor
is tried instead."""
COARSE_SIGMA = 0.7
"""Extra blur (in coarse pixels) after downscaling. A template is cut at any pixel offset, the
frame is decimated at even ones: without it a sharp-text template scores up to 0.2 lower at its
true place than at full resolution; with it, 99% of ~700 random demo-screen cuts stay within
0.11 (the worst, 0.17, was a cut of mostly flat background)."""
COARSE_SLACK = 0.2
"""How far a coarse score may lie below the full-resolution score at the same place (see above):
a coarse peak below ``max(threshold, best so far) - COARSE_SLACK`` is taken not to hide a better
match and is not checked at full resolution."""
WINDOW_OVERHEAD = 1000
"""Fixed cost of one full-resolution window check, in pixels of search area (about 0.05 ms on the
development machine, where a full 720p search costs 66 ms for 921 600 pixels)."""
MAX_WORK_FRACTION = 0.5
"""When the windows to check would cost more than this fraction of a full search, the template
does not stand out at coarse scale (a plain edge or a flat patch repeated across the screen):
the full search is used instead, exactly as before."""
MAX_REFINE_STEPS = 4


@dataclass(frozen=True, slots=True)
class Template:
    """A template with its downscaled copy for the coarse search, prepared once per wait."""

    image: Image
    factor: int  # 1: too small to downscale; the full search is used
    coarse: Image | None

    @property
    def w(self) -> int:
        return int(self.image.shape[1])

    @property
    def h(self) -> int:
        return int(self.image.shape[0])


def _downscale(image: Image, factor: int) -> Image:
    """Grey, Gaussian-blurred and decimated by *factor* (a power of two), pixel (i, j) standing
    for full-resolution (factor*i, factor*j).

    Grey because the coarse search only ranks candidates (colour is scored at full resolution)
    and one channel is a third of the work; blurred (pyramid plus ``COARSE_SIGMA``) because a
    template is cut at any pixel offset, and a blurred picture looks nearly the same whichever
    pixel the decimation starts on, where a one-pixel line does not."""
    small = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    while factor > 1:
        small = cv2.pyrDown(small)
        factor //= 2
    return np.asarray(cv2.GaussianBlur(small, (0, 0), COARSE_SIGMA), dtype=np.uint8)


def _detail(image: Image) -> float:
    """Largest per-channel standard deviation: what TM_CCOEFF_NORMED has to work with (a flat
    colour has none, whatever the colour).

    ``cv2.meanStdDev`` sums in place. NumPy's ``std`` made a float64 copy of the picture, 8 bytes
    per sample: decoding and preparing a 4K template peaked at 219 MB and took 1.2 s with it, 53 MB
    and 0.13 s without (the 16000x16000 bomb asked it for 5.7 GiB)."""
    _, std = cv2.meanStdDev(image)
    return float(np.max(std))


def prepare_template(template: Image) -> Template:
    """Choose the coarsest factor that leaves the template big and detailed enough."""
    th, tw = template.shape[:2]
    for factor in COARSE_FACTORS:
        if min(th, tw) // factor < MIN_COARSE_SIDE:
            continue
        coarse = _downscale(template, factor)
        if _detail(coarse) >= MIN_COARSE_STD:
            return Template(template, factor, coarse)
    return Template(template, 1, None)


def _scores(area: Image, template: Image) -> npt.NDArray[np.float32]:
    result = np.asarray(cv2.matchTemplate(area, template, cv2.TM_CCOEFF_NORMED), np.float32)
    # A flat patch of the screen gives 0/0 = NaN; it matches nothing.
    np.nan_to_num(result, copy=False, nan=-1.0, posinf=-1.0, neginf=-1.0)
    return result


def match_template_full(image: Image, template: Image, region: Region | None = None) -> Match:
    """Best TM_CCOEFF_NORMED match, every position at full resolution (the reference the fast
    search is tested and benchmarked against; several times slower)."""
    area, ox, oy = _searched_area(image, template, region)
    _, score, _, (x, y) = cv2.minMaxLoc(_scores(area, template))
    th, tw = template.shape[:2]
    return Match(ox + int(x), oy + int(y), tw, th, float(score))


def _searched_area(image: Image, template: Image, region: Region | None) -> tuple[Image, int, int]:
    area, ox, oy = _crop(image, region)
    th, tw = template.shape[:2]
    ah, aw = area.shape[:2]
    if th > ah or tw > aw:
        raise ScreenError(f"template {tw}x{th} is larger than the searched area {aw}x{ah}")
    return area, ox, oy


def _peaks_above(
    result: npt.NDArray[np.float32], bound: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(xs, ys) of the local maxima of the coarse scores at or above *bound*. Filtering before
    anything else matters: flat screen areas make a plateau of 100 000 "maxima"."""
    above = result >= bound
    if not above.any():
        empty = np.zeros(0, np.intp)
        return empty, empty
    peaks = above & (result >= cv2.dilate(result, np.ones((3, 3), np.uint8)))
    ys, xs = np.nonzero(peaks)
    return xs, ys


def _clusters(
    xs: npt.NDArray[np.intp], ys: npt.NDArray[np.intp], shape: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Group coarse peaks lying within two coarse pixels of each other into boxes
    (x0, y0, x1, y1, inclusive). An edge or a line of text in the template gives a ridge of
    equal peaks along every similar edge on screen; one window per ridge scores them all at
    the cost of one."""
    mask = np.zeros(shape, np.uint8)
    mask[ys, xs] = 255
    grown = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes = []
    for i in range(1, count):
        x, y, w, h = (int(v) for v in stats[i, :4])
        # Undo the dilation (by one pixel) where the box is not at the picture's edge.
        x0, y0 = x + (x > 0), y + (y > 0)
        x1 = x + w - 1 - (x + w < shape[1])
        y1 = y + h - 1 - (y + h < shape[0])
        boxes.append((x0, y0, max(x0, x1), max(y0, y1)))
    return boxes


def _refine(area: Image, tpl: Template, box: tuple[int, int, int, int]) -> tuple[float, int, int]:
    """Full-resolution best for template positions in *box* (x0, y0, x1, y1) widened by the
    factor, climbing while the best lies on the window's edge.

    Widening by ±factor covers every position whose coarse cell is in the box; if the best is on
    the window's edge the true peak may lie beyond, so the window moves there.
    """
    ah, aw = area.shape[:2]
    xmax, ymax = aw - tpl.w, ah - tpl.h
    r = tpl.factor
    bx0, by0, bx1, by1 = box
    seen: set[tuple[int, int]] = set()
    score, x, y = -2.0, bx0, by0
    for _ in range(MAX_REFINE_STEPS):
        x0, x1 = max(0, bx0 - r), min(xmax, bx1 + r)
        y0, y1 = max(0, by0 - r), min(ymax, by1 + r)
        window = area[y0 : y1 + tpl.h, x0 : x1 + tpl.w]
        _, s, _, (bx, by) = cv2.minMaxLoc(_scores(window, tpl.image))
        bx, by = x0 + int(bx), y0 + int(by)
        if s > score or (s == score and (by, bx) < (y, x)):
            score, x, y = float(s), bx, by
        on_edge = (bx == x0 > 0) or (bx == x1 < xmax) or (by == y0 > 0) or (by == y1 < ymax)
        if not on_edge or (bx, by) in seen:
            break
        seen.add((bx, by))
        bx0 = bx1 = bx
        by0 = by1 = by
    return score, x, y


def match_template(
    image: Image,
    template: Image | Template,
    region: Region | None = None,
    threshold: float | None = None,
) -> Match:
    """Best TM_CCOEFF_NORMED match of *template* in *image* (optionally inside *region*).

    Coarse to fine: match both downscaled (grey, by the template's factor); score the best
    coarse peak at full resolution in a window barely larger than the template; then every
    coarse peak that could still hide a better match (within ``COARSE_SLACK`` of the threshold
    or of the best so far), nearby peaks sharing a window. The score and position reported are
    those of :func:`match_template_full`, at a fraction of the work. With *threshold*, only a
    match scoring at least that much is searched for exactly; below it, the best score returned
    may be a little lower than the full search's (it is still a true full-resolution score, so
    never a false match). A template that does not stand out at coarse scale gets the full
    search.
    """
    tpl = template if isinstance(template, Template) else prepare_template(template)
    area, ox, oy = _searched_area(image, tpl.image, region)
    if tpl.coarse is None:
        return match_template_full(image, tpl.image, region)
    f = tpl.factor
    coarse = _scores(_downscale(area, f), tpl.coarse)
    _, _, _, (cx, cy) = cv2.minMaxLoc(coarse)  # the first best, in raster order
    best = _refine(area, tpl, (cx * f, cy * f, cx * f, cy * f))
    floor = -2.0 if threshold is None else threshold
    xs, ys = _peaks_above(coarse, max(floor, best[0]) - COARSE_SLACK)
    checked = (np.abs(xs - cx) <= 1) & (np.abs(ys - cy) <= 1)  # inside the window just scored
    xs, ys = xs[~checked], ys[~checked]
    if len(xs):
        boxes = _clusters(xs, ys, (coarse.shape[0], coarse.shape[1]))
        work = sum(
            ((x1 - x0 + 2) * f + tpl.w) * ((y1 - y0 + 2) * f + tpl.h) + WINDOW_OVERHEAD
            for x0, y0, x1, y1 in boxes
        )
        if work > area.shape[0] * area.shape[1] * MAX_WORK_FRACTION:
            # Too many look-alikes at coarse scale: the full search is cheaper.
            return match_template_full(image, tpl.image, region)
        for x0, y0, x1, y1 in boxes:
            score, x, y = _refine(area, tpl, (x0 * f, y0 * f, x1 * f, y1 * f))
            if score > best[0] or (score == best[0] and (y, x) < (best[2], best[1])):
                best = (score, x, y)
    score, x, y = best
    return Match(ox + x, oy + y, tpl.w, tpl.h, score)


async def wait_for_image(
    hub: FrameHub,
    template: Image | Template,
    *,
    timeout: float,
    threshold: float = 0.9,
    region: Region | None = None,
) -> Match:
    """Return the first match scoring at least *threshold*, checking each changed frame once.

    Pass a :class:`Template` from :func:`load_template`; a bare image is prepared (once per wait,
    not per frame) in the template thread."""
    loop = asyncio.get_running_loop()
    best: float | None = None
    if isinstance(template, Template):
        prepared = template
    else:
        prepared = await loop.run_in_executor(_decoder, prepare_template, template)

    async def check(frame: Frame) -> Match | None:
        nonlocal best
        m = await loop.run_in_executor(
            None, match_template, frame.image, prepared, region, threshold
        )
        best = m.score if best is None else max(best, m.score)
        return m if m.score >= threshold else None

    found = await _watch(hub, check, timeout)
    if found is None:
        score = "no frame arrived" if best is None else f"best score {best:.3f}"
        raise ScreenTimeout(
            f"timed out after {timeout:g} s waiting for the image ({score}, "
            f"threshold {threshold:g})",
            None if best is None else round(best, 4),
        )
    return found


async def _watch(
    hub: FrameHub,
    check: Callable[[Frame], Awaitable[Match | None]],
    timeout: float,
) -> Match | None:
    """Run *check* on the latest frame, then on every changed frame, until it matches."""
    try:
        async with asyncio.timeout(timeout):
            seq = 0
            while True:
                frame = await hub.next_frame(seq, changed_only=seq > 0)
                seq = frame.seq
                found = await check(frame)
                if found is not None:
                    return found
    except TimeoutError:
        return None


# ---------------------------------------------------------------------------- OCR
def tesseract_path() -> str | None:
    return shutil.which("tesseract")


def prepare_for_ocr(image: Image, region: Region | None = None) -> tuple[bytes, int, int]:
    """Grey, 2x, black text on white (tesseract's LSTM wants dark on light), PNG-encoded."""
    area, ox, oy = _crop(image, region)
    grey = cv2.cvtColor(area, cv2.COLOR_BGR2GRAY)
    grey = cv2.resize(grey, None, fx=OCR_SCALE, fy=OCR_SCALE, interpolation=cv2.INTER_CUBIC)
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if cv2.countNonZero(binary) < binary.size // 2:
        binary = cv2.bitwise_not(binary)  # light text on a dark (BIOS blue) background
    ok, png = cv2.imencode(".png", binary)
    if not ok:
        raise ScreenError("could not encode the picture for OCR")
    return png.tobytes(), ox, oy


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    x: int
    y: int
    w: int
    h: int
    conf: float
    line: tuple[int, int, int]


async def ocr_words(
    image: Image, region: Region | None = None, timeout: float = 60.0
) -> list[Word]:
    """Words tesseract reads on *image*, with boxes in frame pixels."""
    exe = tesseract_path()
    if exe is None:
        raise NoOcr()
    loop = asyncio.get_running_loop()
    png, ox, oy = await loop.run_in_executor(None, prepare_for_ocr, image, region)
    proc = await asyncio.create_subprocess_exec(
        exe,
        "stdin",
        "stdout",
        "--psm",
        "11",  # sparse text: BIOS screens are scattered labels, not paragraphs
        "tsv",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},  # one core: the appliance has few
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate(png)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await proc.wait()
    if proc.returncode != 0:
        msg = err.decode(errors="replace").strip().splitlines()
        raise ScreenError(f"tesseract failed: {msg[-1] if msg else proc.returncode}")
    return parse_tsv(out.decode(errors="replace"), ox, oy, OCR_SCALE)


def parse_tsv(tsv: str, ox: int = 0, oy: int = 0, scale: int = 1) -> list[Word]:
    words: list[Word] = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        try:
            words.append(
                Word(
                    text=text,
                    x=ox + int(row["left"]) // scale,
                    y=oy + int(row["top"]) // scale,
                    w=-(-int(row["width"]) // scale),
                    h=-(-int(row["height"]) // scale),
                    conf=float(row["conf"]),
                    line=(int(row["block_num"]), int(row["par_num"]), int(row["line_num"])),
                )
            )
        except (KeyError, ValueError):
            continue
    return words


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().casefold()


def find_text(words: list[Word], text: str) -> Match | None:
    """Find *text* (case-insensitive, any whitespace) inside one line of OCR words."""
    wanted = _norm(text)
    if not wanted:
        return None
    lines: dict[tuple[int, int, int], list[Word]] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    for line_words in lines.values():
        joined = ""
        spans: list[tuple[int, int, Word]] = []
        for w in line_words:
            if joined:
                joined += " "
            start = len(joined)
            joined += w.text.casefold()
            spans.append((start, len(joined), w))
        pos = joined.find(wanted)
        if pos < 0:
            continue
        end = pos + len(wanted)
        hit = [w for s, e, w in spans if s < end and e > pos]
        x0 = min(w.x for w in hit)
        y0 = min(w.y for w in hit)
        x1 = max(w.x + w.w for w in hit)
        y1 = max(w.y + w.h for w in hit)
        conf = sum(max(w.conf, 0.0) for w in hit) / len(hit) / 100
        return Match(x0, y0, x1 - x0, y1 - y0, conf)
    return None


def similarity(words: list[Word], text: str) -> float:
    """How close the screen came to *text*: the best fraction of its words seen in order on a
    line (for the timeout message, so "0.67" tells the user OCR read two words of three)."""
    wanted = _norm(text).split(" ")
    if not wanted or not words:
        return 0.0
    seen = {_norm(w.text) for w in words}
    return round(sum(1 for w in wanted if w in seen) / len(wanted), 4)


@dataclass
class _OcrRun:
    task: asyncio.Task[list[Word]]
    waiters: int = 0
    abandoned: bool = False
    """Cancelled by its last waiter; it stays in ``_ocr_runs`` until tesseract has been reaped."""


_ocr_runs: dict[tuple[int, int, Region | None], _OcrRun] = {}


async def shared_ocr(hub: FrameHub, frame: Frame, region: Region | None = None) -> list[Word]:
    """OCR *frame* once however many waits ask for the same picture at the same time.

    Tesseract costs about a second of one core per 720p frame; two clients waiting for text must
    not double that. The run is cancelled (and tesseract killed) when its last waiter gives up.
    A wait that comes while such a run is still ending starts a new one: joining it would hand
    the run's CancelledError to a request nobody cancelled, and aiohttp then drops the
    connection without an answer (found by tests/test_fuzz_api.py: two text waits in a row on
    a static screen, the first timed out).
    """
    key = (id(hub), frame.content_seq, region)
    run = _ocr_runs.get(key)
    if run is None or run.abandoned:
        run = _OcrRun(asyncio.create_task(ocr_words(frame.image, region), name="ocr"))
        _ocr_runs[key] = run

        def forget(task: asyncio.Task[list[Word]]) -> None:
            if _ocr_runs.get(key) is run:
                del _ocr_runs[key]
            if not task.cancelled():
                task.exception()  # retrieved here; each waiter re-raises it

        run.task.add_done_callback(forget)
    run.waiters += 1
    try:
        return await asyncio.shield(run.task)
    finally:
        run.waiters -= 1
        if run.waiters == 0 and not run.task.done():
            run.abandoned = True
            run.task.cancel()


async def wait_for_text(
    hub: FrameHub, text: str, *, timeout: float, region: Region | None = None
) -> Match:
    """Return where OCR first reads *text*, checking each changed frame once."""
    if tesseract_path() is None:
        raise NoOcr()
    if not _norm(text):
        raise ScreenError("text to wait for is empty")
    best: float | None = None

    async def check(frame: Frame) -> Match | None:
        nonlocal best
        words = await shared_ocr(hub, frame, region)
        found = find_text(words, text)
        score = similarity(words, text)
        best = score if best is None else max(best, score)
        return found

    found = await _watch(hub, check, timeout)
    if found is None:
        seen = "no frame arrived" if best is None else f"best word overlap {best:.2f}"
        raise ScreenTimeout(
            f"timed out after {timeout:g} s waiting for the text {text!r} ({seen})", best
        )
    return found
