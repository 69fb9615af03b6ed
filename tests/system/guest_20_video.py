"""Capture from vivid's HDMI input through ipkvm, and losing/regaining the signal."""

from __future__ import annotations

import json
import subprocess
import time

from systest import Api, unit_property, wait_for

VIDEO = "/dev/video0"


def _signal_mode(mode: int) -> None:
    # vivid: 0 current timings, 1 no signal, 2 no lock, 3 out of range
    subprocess.run(["v4l2-ctl", "-d", VIDEO, "-c", f"dv_timings_signal_mode={mode}"], check=True)


def _status_is(api: Api, want: str, seen: list[dict[str, object]]) -> bool:
    video: dict[str, object] = api.state()["video"]
    brief = {"status": video["status"], "message": video["message"]}
    if not seen or seen[-1] != brief:
        seen.append(brief)
    return video["status"] == want


def _wait_status(api: Api, want: str, timeout: float, seen: list[dict[str, object]]) -> None:
    try:
        wait_for(lambda: _status_is(api, want, seen), timeout, f"video.status {want}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; states seen: {seen}") from None


def test_capture_streams_and_snapshot() -> None:
    api = Api()
    wait_for(lambda: api.state()["video"]["status"] == "ok", 90, "video.status ok")
    video = api.state()["video"]
    assert (video["width"], video["height"]) == (1280, 720), video
    status, body, ctype = api.request("GET", "/api/snapshot")
    assert status == 200, status
    assert ctype.startswith("image/jpeg") and body[:2] == b"\xff\xd8", (ctype, body[:8])
    assert len(body) > 5000, len(body)  # vivid's test pattern, not a blank frame


def _snapshot(api: Api) -> bytes:
    status, body, ctype = api.request("GET", "/api/snapshot")
    assert status == 200 and ctype.startswith("image/jpeg"), (status, ctype)
    return bytes(body)


def test_no_signal_detected_and_recovered() -> None:
    """vivid's HDMI input loses its signal: ipkvm says so within seconds (QUERY_DV_TIMINGS), keeps
    saying so while vivid streams noise, and captures again once the signal is back — same
    process, no restart."""
    api = Api()
    pid = unit_property("ipkvm.service", "MainPID")
    seen: list[dict[str, object]] = []
    _wait_status(api, "ok", 60, seen)
    try:
        _signal_mode(1)
        t0 = time.monotonic()
        _wait_status(api, "no_signal", 5, seen)
        lost_after = time.monotonic() - t0
        wait_for(
            lambda: "no hdmi signal" in str(api.state()["video"]["message"]).lower(),
            5,
            f"the message to say why: {seen}",
        )
        # it must stay so while there is no signal (vivid sends noise frames meanwhile)
        for _ in range(10):
            assert not _status_is(api, "ok", seen), f"back to ok without a signal: {seen}"
            time.sleep(0.5)
        placeholder = _snapshot(api)
        assert _snapshot(api) == placeholder, "the no-signal frame must not change (no noise)"
    finally:
        _signal_mode(0)
    t1 = time.monotonic()
    _wait_status(api, "ok", 10, seen)
    # fresh frames: the test pattern (vivid's on-screen clock moves), not the no-signal frame
    first = wait_for(lambda: (s := _snapshot(api)) != placeholder and s, 10, "a captured frame")
    assert len(first) > 5000, len(first)
    wait_for(lambda: _snapshot(api) != first, 10, "the picture to move again")
    recovered_after = time.monotonic() - t1
    assert unit_property("ipkvm.service", "MainPID") == pid, "the service was restarted"
    print(f"no_signal after {lost_after:.1f} s, ok + moving picture {recovered_after:.1f} s after")


def test_no_lock_and_out_of_range_are_told_apart() -> None:
    """vivid's other signal modes: QUERY_DV_TIMINGS answers ENOLCK / ERANGE, the message says so."""
    api = Api()
    seen: list[dict[str, object]] = []
    _wait_status(api, "ok", 30, seen)
    try:
        for mode, words in ((2, "cannot lock"), (3, "out of the receiver's range")):
            _signal_mode(mode)
            wait_for(
                lambda words=words: (
                    _status_is(api, "no_signal", seen)
                    and words in str(api.state()["video"]["message"])
                ),
                5,
                f"no_signal saying {words!r}: {seen}",
            )
    finally:
        _signal_mode(0)
    _wait_status(api, "ok", 10, seen)


def test_frames_keep_the_device_format_and_a_snapshot_never_goes_through_bgr() -> None:
    """vivid delivers YUYV: frames carry it, and a JPEG snapshot is one YUYV → I420 conversion and
    one encode from YUV (the work counters in /api/state say so)."""
    api = Api()
    wait_for(lambda: api.state()["video"]["status"] == "ok", 60, "video.status ok")
    video = api.state()["video"]
    assert video["format"] == "yuyv", video
    before = video["work"]
    _snapshot(api)
    work = api.state()["video"]["work"]
    assert work["stages"].get("bgr", {}).get("conversions", 0) == before["stages"].get(
        "bgr", {}
    ).get("conversions", 0), work
    assert work["decodes"] == 0, work
    assert work["stages"]["jpeg"]["encodes"] >= 1, work
    print("work:", work)


def _edid_file(path: str) -> bytes:
    subprocess.run(
        ["v4l2-ctl", "-d", VIDEO, f"--get-edid=format=raw,file={path}"],
        check=True,
        capture_output=True,
    )
    with open(path, "rb") as f:
        return f.read()


def _renamed(edid: bytes, name: str) -> bytes:
    """*edid* with its monitor-name descriptor (tag 0xFC) renamed and block 0's checksum fixed."""
    block = bytearray(edid[:128])
    for off in range(54, 126, 18):
        if block[off : off + 4] == b"\x00\x00\x00\xfc":
            text = name.encode()[:13]
            block[off + 5 : off + 18] = (text + b"\n" + b" " * 13)[:13]
    block[127] = (-sum(block[:127])) & 0xFF
    return bytes(block) + edid[128:]


def test_edid_default_is_set_and_a_custom_one_can_be_loaded() -> None:
    """ipkvm loads its default EDID into vivid's HDMI receiver at start (video.edid = default);
    PUT /api/video/edid replaces it (v4l2-ctl reads back the same bytes) and the picture stays."""
    api = Api()
    wait_for(lambda: api.state()["video"]["status"] == "ok", 60, "video.status ok")
    answer = api.get("/api/video/edid")
    assert answer["info"]["timings"][0] == "1920x1080p60", answer
    assert answer["info"]["name"] == "ipkvm", answer
    assert answer["configured"]["applied"] is True, answer
    default = bytes.fromhex(answer["edid"])
    assert _edid_file("/tmp/edid-default.bin") == default
    custom = _renamed(default, "systest")
    try:
        status, body, _ = api.request("PUT", "/api/video/edid", {"edid": custom.hex()})
        assert status == 200, body[:300]
        assert json.loads(body)["info"]["name"] == "systest"
        assert _edid_file("/tmp/edid-custom.bin") == custom
        broken = bytearray(custom)
        broken[127] ^= 0xFF
        status, body, _ = api.request("PUT", "/api/video/edid", {"edid": broken.hex()})
        assert status == 400 and b"checksum" in body, (status, body[:300])
        assert _edid_file("/tmp/edid-custom.bin") == custom, "a refused EDID must not be set"
    finally:
        status, body, _ = api.request("PUT", "/api/video/edid", {"default": True})
        assert status == 200, body[:300]
    assert _edid_file("/tmp/edid-back.bin") == default
    wait_for(lambda: api.state()["video"]["status"] == "ok", 30, "video.status ok again")
