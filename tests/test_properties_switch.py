"""Property tests for the switch reply scanners: whatever a serial line or a TCP stream delivers
(noise, replies split at any byte, several in one read), scanning never raises, never holds more
than a short tail, and finds every valid reply that was sent."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from appliance.switch.extron import Extron
from appliance.switch.ezcoo import SHORT_CODES, Ezcoo
from appliance.switch.parse import ReplyScanner
from appliance.switch.pway import Pway
from appliance.switch.tesmart import Tesmart
from appliance.switch.xh import Xh4401

SCANNERS: dict[str, Callable[[], ReplyScanner]] = {
    "tesmart": Tesmart().scanner,
    "ezcoo": Ezcoo().scanner,
    "xh-hk4401": Xh4401().scanner,
    "extron": Extron().scanner,
    "pway": Pway().scanner,
}
SHORT_BY_PORT = {port: b"V" + code + b"S" for code, port in SHORT_CODES.items()}


def reply(model: str, port: int, variant: int) -> bytes:
    """A reply naming *port* as the protocol notes write it."""
    if model == "tesmart":
        return bytes([0xAA, 0xBB, 0x03, 0x11, port - 1, 0xEE])
    if model == "ezcoo":
        if variant == 0 and port <= 4:
            return SHORT_BY_PORT[port]
        return b"OUT1 VS %s%d\r\n" % (b"IN" if variant == 1 else b"", port)
    if model == "xh-hk4401":
        return b"AG0%dgA" % (port % 10 or 1)
    if model == "extron":
        return b"Chn%d\r\n" % port
    return b"VGA_SWITCH_CONTROL=%d\r\n" % port


def expected(model: str, port: int) -> int:
    return port % 10 or 1 if model == "xh-hk4401" else port


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in points:
        chunks.append(data[last:p])
        last = p
    chunks.append(data[last:])
    return chunks


@given(st.sampled_from(sorted(SCANNERS)), st.lists(st.binary(max_size=200), max_size=20))
def test_arbitrary_bytes_never_raise(model: str, chunks: list[bytes]) -> None:
    scanner = SCANNERS[model]()
    for chunk in chunks:
        for port in scanner.feed(chunk):
            assert 1 <= port <= 256
        assert len(scanner._buf) <= scanner.keep


@given(
    st.sampled_from(sorted(SCANNERS)),
    st.lists(st.integers(1, 16), min_size=1, max_size=8),
    st.integers(0, 2),
    st.lists(st.integers(0, 400), max_size=6),
)
def test_valid_replies_parse_across_any_split(
    model: str, ports: list[int], variant: int, cuts: list[int]
) -> None:
    stream = b"".join(reply(model, p, variant) for p in ports)
    scanner = SCANNERS[model]()
    found: list[int] = []
    for chunk in split(stream, cuts):
        found += scanner.feed(chunk)
    assert found == [expected(model, p) for p in ports]


@given(
    st.sampled_from(sorted(SCANNERS)),
    st.integers(1, 16),
    st.binary(max_size=40).filter(lambda b: b"\n" in b or b"\xee" in b or not b),
)
def test_a_reply_after_noise_is_found(model: str, port: int, noise: bytes) -> None:
    """Noise that ends a line (or a frame) before the reply cannot hide it."""
    scanner = SCANNERS[model]()
    found = scanner.feed(noise + b"\r\n" + reply(model, port, 1))
    assert found[-1:] == [expected(model, port)]
