"""Configuration: defaults, errors that name the key, overrides, and the ``config`` CLI."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from appliance.config import ConfigError, build_config, defaults_toml, known_keys, load_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ipkvm.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    c = load_config(None)
    assert (c.server.listen, c.server.host, c.server.port) == ("127.0.0.1:8080", "127.0.0.1", 8080)
    assert c.server.tls is False
    assert c.server.state_dir == Path("/var/lib/ipkvm")
    assert c.server.session_ttl == 12 * 3600
    assert c.server.cert == Path("/var/lib/ipkvm/tls/cert.pem")
    assert c.target.kind == "demo"
    assert (c.hid.output, c.video.source) == ("demo", "demo")
    assert c.hid.otg.keyboard == Path("/dev/hidg0")
    assert c.hid.ch9329.baud == 9600
    assert (c.video.width, c.video.height, c.video.format) == (1920, 1080, "MJPG")
    assert (c.stream.jpeg_quality, c.demo.layout, c.gadget.udc) == (80, "us", "auto")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.server.tls = True  # type: ignore[misc]


def test_file_values_and_paths(tmp_path: Path) -> None:
    c = load_config(
        write(
            tmp_path,
            '[server]\nlisten = "[::]:443"\ntls = true\nstate_dir = "/srv/kvm"\n'
            'key = "/etc/ipkvm/key.pem"\n'
            '[target]\nkind = "hardware"\n[hid]\noutput = "ch9329"\n'
            '[hid.ch9329]\nport = "/dev/ttyAMA0"\nbaud = 115200\n'
            '[hid.otg]\nkeyboard = "/tmp/fifo0"\n[video]\ndevice = "/dev/video2"\n',
        )
    )
    assert (c.server.host, c.server.port, c.server.tls) == ("::", 443, True)
    assert c.server.cert == Path("/srv/kvm/tls/cert.pem")
    assert c.server.key == Path("/etc/ipkvm/key.pem")
    assert c.hid.output == "ch9329"  # explicit, not "auto"
    assert c.video.source == "v4l2"  # auto on hardware
    assert c.hid.ch9329.port == Path("/dev/ttyAMA0") and c.hid.ch9329.baud == 115200
    assert c.hid.otg.keyboard == Path("/tmp/fifo0")
    assert c.video.device == Path("/dev/video2")
    assert c.path == tmp_path / "ipkvm.toml"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            "[hid.otg]\nkeyboard = 3\n",
            "hid.otg.keyboard",
            "hid.otg.keyboard: must be a string path",
        ),
        ('[server]\nlisten = "0.0.0.0:99999"\n', "server.listen", "port 99999 out of range"),
        ('[server]\nlisten = "::1:80"\n', "server.listen", "IPv6 addresses in brackets"),
        ('[server]\nlisten = "localhost"\n', "server.listen", 'not "host:port"'),
        ("[hid]\nfoo = 1\n", "hid.foo", "unknown key 'hid.foo'"),
        (
            '[hid.otg]\nkeybaord = "/dev/hidg0"\n',
            "hid.otg.keybaord",
            "did you mean 'hid.otg.keyboard'?",
        ),
        ('[hid]\ndevice = "/dev/video0"\n', "hid.device", "did you mean 'video.device'?"),
        ("[hdi]\n", "hdi", "unknown key 'hdi' (did you mean 'hid'?)"),
        ("hid = 3\n", "hid", "must be a table"),
        ("[video]\nfps = true\n", "video.fps", "must be an integer"),
        ('[video]\nformat = "H264"\n', "video.format", "must be one of 'MJPG', 'YUYV'"),
        ("[stream]\njpeg_quality = 0\n", "stream.jpeg_quality", "0 out of range (1..100)"),
        ('[target]\nkind = "vmware"\n', "target.kind", "must be one of 'demo', 'hardware', 'qemu'"),
        ("[server]\ntls = 1\n", "server.tls", "must be true or false"),
        ("[server]\nsession_ttl_hours = 0\n", "server.session_ttl_hours", "out of range"),
        ('[gadget]\nname = "../x"\n', "gadget.name", "must be a simple name"),
        ('[hid]\noutput = "usb"\n', "hid.output", "'auto', 'demo', 'otg', 'ch9329'"),
        (
            '[server]\ntrusted_proxies = ["10.0.0.0/33"]\n',
            "server.trusted_proxies",
            "server.trusted_proxies: '10.0.0.0/33' is not an IP address or network",
        ),
        (
            '[server]\ntrusted_proxies = ["127.0.0.1", "proxy.example"]\n',
            "server.trusted_proxies",
            "'proxy.example' is not an IP address or network",
        ),
        (
            '[server]\ntrusted_proxies = ["10.0.0.1/8"]\n',
            "server.trusted_proxies",
            "10.0.0.1/8 has host bits set",
        ),
        ('[server]\ntrusted_proxies = ["::/0"]\n', "server.trusted_proxies", "trusts every"),
        ('[server]\ntrusted_proxies = "10.0.0.1"\n', "server.trusted_proxies", "must be a list"),
        (
            '[server]\nproxy_header = "X-Real-IP"\n',
            "server.proxy_header",
            "must be one of 'x-forwarded-for', 'forwarded'",
        ),
        (
            '[server]\ntrusted_proxy = ["10.0.0.1"]\n',
            "server.trusted_proxy",
            "did you mean 'server.trusted_proxies'?",
        ),
        (
            '[webrtc]\ntrusted_proxies = ["10.0.0.1"]\n',
            "webrtc.trusted_proxies",
            "did you mean 'server.trusted_proxies'?",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key == key
    assert message in str(info.value)


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.toml") as info:
        load_config(tmp_path / "missing.toml")
    assert info.value.key is None
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[server\n"))


def test_overrides_revalidate_and_resolve_auto(tmp_path: Path) -> None:
    base = load_config(write(tmp_path, '[video]\nsource = "demo"\n'))
    hw = base.with_overrides(target="hardware", listen="0.0.0.0:443", tls=True, state_dir="/s")
    assert hw.target.kind == "hardware"
    assert hw.hid.output == "otg"  # was auto
    assert hw.video.source == "demo"  # explicit in the file: kept
    assert (hw.server.port, hw.server.tls, hw.server.key) == (443, True, Path("/s/tls/key.pem"))
    assert base.hid.output == "demo" and base.server.port == 8080  # original untouched
    with pytest.raises(ConfigError) as info:
        base.with_overrides(listen="0.0.0.0:70000")
    assert info.value.key == "server.listen"
    with pytest.raises(ConfigError) as info:
        base.with_overrides(target="toaster")
    assert info.value.key == "target.kind"


def test_defaults_toml_and_example_document_every_key() -> None:
    assert build_config(tomllib.loads(defaults_toml())) == load_config(None)
    example = ROOT / "ipkvm.example.toml"
    assert load_config(example) == load_config(None)
    text = example.read_text()
    for dotted in known_keys():
        section, _, name = dotted.rpartition(".")
        block = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        assert f"{name} = " in block, dotted


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_config_check_cli(tmp_path: Path) -> None:
    good = write(tmp_path, '[target]\nkind = "hardware"\n')
    ok = run_cli("config", "check", str(good))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok")
    assert "hid        otg" in ok.stdout and "/dev/video0" in ok.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nlisten = "0.0.0.0:99999"\n')
    res = run_cli("config", "check", str(bad))
    assert res.returncode == 1
    assert "server.listen: port 99999 out of range" in res.stderr
    assert res.stdout == ""

    res = run_cli("config", "check", str(tmp_path / "nope.toml"))
    assert res.returncode == 1 and "cannot read" in res.stderr

    defaults = run_cli("config", "defaults")
    assert defaults.returncode == 0
    assert build_config(tomllib.loads(defaults.stdout)) == load_config(None)


def test_video_stream_and_webrtc_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text(
        '[stream]\nh264_bitrate = 2500\nh264_codec = "auto"\n'
        '[webrtc]\nice_urls = ["stun:stun.example:3478", "turn:turn.example:3478"]\n'
        'turn_username = "kvm"\nturn_password = "s3cret"\n'
    )
    config = load_config(cfg)
    assert config.stream.h264_bitrate == 2500 and config.stream.h264_codec == "auto"
    assert config.webrtc.ice_urls == ("stun:stun.example:3478", "turn:turn.example:3478")
    cfg.write_text('[webrtc]\nice_urls = ["http://not-ice"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.key == "webrtc.ice_urls" and "http://not-ice" in str(info.value)


def test_trusted_proxies(tmp_path: Path) -> None:
    assert load_config(None).server.trusted_proxies == ()  # trust no proxy: the TCP peer counts
    assert load_config(None).server.proxy_header == "x-forwarded-for"
    c = load_config(
        write(
            tmp_path,
            '[server]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "2001:db8::/64", "::1"]\n'
            'proxy_header = "forwarded"\n',
        )
    )
    assert [str(n) for n in c.server.trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "2001:db8::/64",
        "::1/128",
    ]
    assert c.server.proxy_header == "forwarded"
    assert "proxies    127.0.0.1/32 10.0.0.0/8 2001:db8::/64 ::1/128 (forwarded)" in c.summary()
    assert c.with_overrides(listen="0.0.0.0:443").server.trusted_proxies == c.server.trusted_proxies
