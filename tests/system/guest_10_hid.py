"""HID through the real gadget stack: API → ipkvm → /dev/hidgN → dummy_udc → dummy_hcd → usbhid
→ evdev on the VM's host side, and keyboard LEDs the other way."""

from __future__ import annotations

import systest
from evdev import ecodes
from systest import Api, decode, drain, host_device, read_until, wait_for


def _type_and_read(text: str, layout: str) -> systest.Decoded:
    api = Api()
    kbd = host_device("keyboard")
    drain(kbd)
    results: list[dict[str, object]] = []
    call = systest.in_background(
        lambda: results.append(
            api.post("/api/hid/type", {"text": text, "layout": layout, "wait": True})
        )
    )
    want = len(text)

    def complete(events: list[systest.Event]) -> bool:
        d = decode(events, layout)
        return len(d.text) + len(d.unknown) >= want and not d.held

    events = read_until(kbd, complete, 90, f"{text!r} on the host")
    call.join(30)
    assert not call.errors, call.errors  # type: ignore[attr-defined]
    assert results and not results[0].get("untypable"), results
    return decode(events, layout)


def test_gadget_enumerated_on_host() -> None:
    for kind in ("keyboard", "abs", "rel"):
        host_device(kind)
    assert Api().state()["hid"]["online"] is True


def test_type_us_layout() -> None:
    text = "Hello, World! 0123456789 @#$ quiz?"
    got = _type_and_read(text, "us")
    assert got.unknown == [], got.unknown
    assert got.text == text


def test_type_de_layout() -> None:
    text = "Grüße, Zürich! yz YZ ä ö ß @ € {[]} \\ 1+1=2 (/)"
    got = _type_and_read(text, "de")
    assert got.unknown == [], got.unknown
    assert got.text == text


def test_absolute_mouse_moves() -> None:
    api = Api()
    mouse = host_device("abs")
    drain(mouse)
    for x, y in ((0.25, 0.75), (0.5, 0.5), (1.0, 0.0)):
        # An unchanged coordinate is not reported again: start from the device's current state.
        seed = [
            (ecodes.EV_ABS, ecodes.ABS_X, mouse.absinfo(ecodes.ABS_X).value),
            (ecodes.EV_ABS, ecodes.ABS_Y, mouse.absinfo(ecodes.ABS_Y).value),
        ]
        api.post("/api/hid/mouse", {"x": x, "y": y})
        want = (round(x * 32767), round(y * 32767))

        def arrived(
            events: list[systest.Event],
            seed: list[systest.Event] = seed,
            want: tuple[int, int] = want,
        ) -> bool:
            pos = {c: v for t, c, v in seed + events if t == ecodes.EV_ABS}
            return abs(pos[ecodes.ABS_X] - want[0]) <= 2 and abs(pos[ecodes.ABS_Y] - want[1]) <= 2

        read_until(mouse, arrived, 30, f"pointer at ({x}, {y})")


def test_host_leds_show_in_state() -> None:
    api = Api()
    kbd = host_device("keyboard")
    for caps, num in ((True, False), (False, True), (False, False)):
        kbd.set_led(ecodes.LED_CAPSL, int(caps))
        kbd.set_led(ecodes.LED_NUML, int(num))
        wait_for(
            lambda c=caps, n=num: (lambda leds: leds["caps"] is c and leds["num"] is n)(
                api.state()["hid"]["leds"]
            ),
            20,
            f"hid.leds caps={caps} num={num}",
        )
