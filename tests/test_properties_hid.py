"""Property tests for the input path's parsers: key chord names and CH9329 serial frames.

Chords come from users (REST, CLI, scripts): any text is a list of real key codes that one report
can hold, or ``UnknownKey``. CH9329 frames come from a UART: line noise, frames split across reads
and several frames in one read must never raise and must not lose the frames that follow.
"""

from __future__ import annotations

import itertools

from hypothesis import example, given
from hypothesis import strategies as st

from hid.ch9329 import (
    CMD_KEYBOARD,
    CMD_MOUSE_ABS,
    CMD_MOUSE_REL,
    HEADER,
    MAX_DATA,
    Frame,
    FrameParser,
    build_frame,
    checksum,
    encode_report,
    scale_abs,
)
from hid.keymap import CODE_TO_USAGE, UnknownKey, is_modifier
from hid.keynames import FRIENDLY, MAX_CHORD_KEYS, MAX_CHORD_MODIFIERS, parse_chord, parse_chords
from hid.reports import abs_mouse_report, keyboard_report, rel_mouse_report
from tests.ch9329_sim import Ch9329Sim


# ----------------------------------------------------------------- chords
@given(st.text(max_size=40))
@example("ctrl++")
@example("+" * 100)
@example("İ")  # lower-cases to two characters
def test_any_chord_text_is_keys_or_unknown_key(text: str) -> None:
    """Any text parses to codes one boot report can hold, or raises UnknownKey."""
    try:
        codes = parse_chord(text)
    except UnknownKey:
        return
    assert all(code in CODE_TO_USAGE for code in codes)
    mods = [c for c in codes if is_modifier(CODE_TO_USAGE[c])]
    assert len(codes) - len(mods) <= MAX_CHORD_KEYS and len(mods) <= MAX_CHORD_MODIFIERS


name_forms = st.sampled_from(sorted(FRIENDLY)).map(lambda n: (n, FRIENDLY[n])) | st.sampled_from(
    sorted(CODE_TO_USAGE)
).map(lambda c: (c, c))


@given(
    st.lists(name_forms, min_size=1, max_size=5),
    st.sampled_from(["+", " + ", "+ "]),
    st.booleans(),
)
def test_written_chords_parse_to_their_keys(
    names: list[tuple[str, str]], sep: str, upper: bool
) -> None:
    """Friendly names and code names, in any case and with spaces around '+', give their codes
    in press order."""
    text = sep.join(n.upper() if upper else n for n, _ in names)
    assert parse_chord(text) == [code for _, code in names]
    assert (
        parse_chords(f" {text.replace(' ', '')}\t{text.replace(' ', '')} ")
        == [[code for _, code in names]] * 2
    )


# ----------------------------------------------------------------- CH9329 frames
frames = st.builds(
    Frame,
    addr=st.integers(0, 255),
    cmd=st.integers(0, 255),
    data=st.binary(max_size=MAX_DATA),
)


def _parse(chunks: list[bytes]) -> tuple[list[Frame], FrameParser]:
    parser = FrameParser()
    found = [frame for chunk in chunks for frame in parser.feed(chunk)]
    return found, parser


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(frames)
def test_frame_round_trip_and_checksum(frame: Frame) -> None:
    """A built frame parses back to itself; its last byte is the sum of the others."""
    wire = build_frame(frame.addr, frame.cmd, frame.data)
    assert wire[:2] == HEADER and wire[-1] == checksum(wire[:-1])
    assert _parse([wire])[0] == [frame]


@given(st.lists(frames, max_size=5), st.lists(st.integers(0, 10_000), max_size=8))
def test_concatenated_frames_split_anywhere_all_arrive(
    frames_: list[Frame], cuts: list[int]
) -> None:
    """Frames back to back, cut into reads at arbitrary places, come out whole and in order."""
    wire = b"".join(build_frame(f.addr, f.cmd, f.data) for f in frames_)
    found, parser = _parse(_split(wire, cuts))
    assert found == frames_ and parser.skipped == 0


@given(st.binary(max_size=300), st.lists(st.integers(0, 10_000), max_size=8))
@example(b"\x57\xab\x00\x00\xff", [])
@example(b"\x57", [])
def test_any_byte_stream_never_raises(noise: bytes, cuts: list[int]) -> None:
    """Line noise, however it is split into reads, gives the same frames as read at once."""
    whole, _ = _parse([noise])
    assert _parse(_split(noise, cuts))[0] == whole


@given(st.binary(max_size=100).filter(lambda b: HEADER not in b), frames, st.lists(st.integers()))
@example(b"\x57", Frame(0, 0x81, b"\x00"), [1])  # half a header right before a real one
def test_parser_recovers_after_garbage(noise: bytes, frame: Frame, cuts: list[int]) -> None:
    """Garbage before a frame (no header in it) is skipped and the frame still arrives intact."""
    wire = noise + build_frame(frame.addr, frame.cmd, frame.data)
    found, parser = _parse(_split(wire, cuts))
    assert [f for f in found if f.checksum_ok] == [frame]
    assert parser.skipped == len(noise)


@given(frames, st.integers(0, MAX_DATA + 5), st.integers(1, 255), frames)
def test_damaged_frame_is_flagged_and_the_next_one_found(
    damaged: Frame, where: int, flip: int, good: Frame
) -> None:
    """One corrupted byte after the header: when it is not the length byte the frame is reported
    as damaged (never trusted), and either way the frame after it is still found."""
    wire = bytearray(build_frame(damaged.addr, damaged.cmd, damaged.data))
    index = 2 + where % (len(wire) - 2)
    wire[index] ^= flip
    found, _ = _parse([bytes(wire) + build_frame(good.addr, good.cmd, good.data)])
    assert found and found[-1] == good
    if index != 4:  # a damaged LEN may frame a different span whose sum happens to match
        assert not found[0].checksum_ok


# ----------------------------------------------------------------- reports as the chip sees them
positions = st.integers(0, 32767)
buttons = st.integers(0, 31)
deltas = st.integers(-127, 127)


@given(
    st.one_of(
        st.builds(
            keyboard_report,
            st.integers(0, 255),
            st.lists(st.integers(4, 0xE7), max_size=8).map(tuple),
        ),
        st.builds(abs_mouse_report, buttons, positions, positions, deltas, deltas),
        st.builds(rel_mouse_report, buttons, deltas, deltas, deltas, deltas),
    )
)
def test_reports_become_frames_the_chip_accepts(report: object) -> None:
    """Every report the controller can make becomes a frame the (independent, strict) simulator
    accepts, carrying the same keys, buttons it has, position scaled to 0..4095, and deltas."""
    from hid.reports import Report, ReportKind

    assert isinstance(report, Report)
    cmd, data = encode_report(report)
    sim = Ch9329Sim()
    try:
        sim._buf += build_frame(0, cmd, data)
        sim._parse()
        assert sim.violations == []
        d = report.data
        if report.kind is ReportKind.KEYBOARD:
            assert cmd == CMD_KEYBOARD and sim.keyboard == [d]
        elif report.kind is ReportKind.MOUSE_ABS:
            move = sim.mouse_abs[0]
            assert cmd == CMD_MOUSE_ABS and move.buttons == d[0] & 7
            assert (move.x, move.y) == (scale_abs(d[1] | d[2] << 8), scale_abs(d[3] | d[4] << 8))
            assert move.wheel == int.from_bytes(d[5:6], "little", signed=True)
        else:
            move = sim.mouse_rel[0]
            signed = [int.from_bytes(bytes([b]), "little", signed=True) for b in d[1:4]]
            assert cmd == CMD_MOUSE_REL and move.buttons == d[0] & 7
            assert [move.dx, move.dy, move.wheel] == signed
    finally:
        sim.close()
