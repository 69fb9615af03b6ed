"""The appliance configuration: one TOML file, validated completely before anything starts.

Why a hand-written schema instead of trusting the file: a typo in a device path or a key name on an
appliance with no screen is found only at 3 a.m. when the target is unreachable. So every key is
known here with its type, range and default; unknown keys are errors (with a "did you mean"), and
every message names the dotted key and what is wrong with it.

Only the standard library is imported: ``ipkvm config check`` must start fast on a Pi Zero.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("/etc/ipkvm/ipkvm.toml")
DEFAULT_STATE_DIR = Path("/var/lib/ipkvm")


class ConfigError(Exception):
    """A configuration problem. ``key`` is the dotted key at fault (None: the file as a whole)."""

    def __init__(self, key: str | None, problem: str, *, name_key: bool = True) -> None:
        super().__init__(f"{key}: {problem}" if key and name_key else problem)
        self.key = key
        self.problem = problem


# --------------------------------------------------------------------------- value checkers
# Each checker takes (dotted key, raw TOML value) and returns the typed value or raises.

Checker = Callable[[str, Any], Any]


def _path(key: str, value: Any) -> Path:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfigError(key, "must be a string path")
    return Path(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, not {value!r}")
    return value


def _int(lo: int, hi: int) -> Checker:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, not {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(key, f"{value} out of range ({lo}..{hi})")
        return value

    return check


def _number(lo: float, hi: float, *, lo_open: bool = False) -> Checker:
    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, not {value!r}")
        too_low = value <= lo if lo_open else value < lo
        if too_low or value > hi:
            bound = f"> {lo}" if lo_open else f">= {lo}"
            raise ConfigError(key, f"{value} out of range (must be {bound} and <= {hi})")
        return float(value)

    return check


def _choice(*options: str) -> Checker:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            listed = ", ".join(repr(o) for o in options)
            raise ConfigError(key, f"must be one of {listed}, not {value!r}")
        return value

    return check


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LAYOUT_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ConfigError(key, f"must be a simple name (letters, digits, . _ -), not {value!r}")
    return value


def _layout(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _LAYOUT_RE.match(value):
        raise ConfigError(key, f"must be a layout name such as 'us' or 'de', not {value!r}")
    return value


def parse_listen(key: str, value: Any) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` → (host, port). Port 0 asks the OS for a free port."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, 'must be a string "host:port"')
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(key, f'{value!r} is not "host:port" (e.g. "0.0.0.0:443")')
    if host.startswith("["):
        if not host.endswith("]"):
            raise ConfigError(key, f"{value!r}: unbalanced brackets around the IPv6 address")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(key, f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ConfigError(key, f'{value!r}: write IPv6 addresses in brackets, "[::]:443"')
    if not port_text.isdigit():
        raise ConfigError(key, f"port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(key, f"port {port} out of range (0..65535)")
    return host, port


def _listen(key: str, value: Any) -> str:
    parse_listen(key, value)
    return str(value)


def _ice_urls(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            key, f'must be a list of URLs such as ["stun:stun.example:3478"], not {value!r}'
        )
    for url in value:
        if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
            raise ConfigError(key, f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
    return tuple(value)


ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(key: str, value: Any) -> tuple[ProxyNetwork, ...]:
    """IP addresses or CIDR networks; an address is its own /32 or /128.

    Host bits set (``10.0.0.1/8``) are refused as a likely typo, and so is a network holding every
    address: trusting all peers would let any client choose the address it is throttled under.
    """
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            key, f'must be a list of IP addresses or networks such as ["10.0.0.0/8"], not {value!r}'
        )
    networks: list[ProxyNetwork] = []
    for entry in value:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=True)
        except ValueError as exc:
            raise ConfigError(key, f"{entry!r} is not an IP address or network: {exc}") from None
        if network.prefixlen == 0:
            raise ConfigError(
                key,
                f"{entry!r} trusts every address, so any client could pick its own; list the "
                "proxies' addresses",
            )
        networks.append(network)
    return tuple(networks)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {value!r}")
    return value


def _optional_path(key: str, value: Any) -> Path | None:
    if value == "":
        return None
    return _path(key, value)


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True, slots=True)
class _Key:
    default: Any  # None: optional key without a value of its own
    check: Checker
    help: str
    example: str = ""  # shown commented out by defaults_toml() when default is None


_SCHEMA: dict[str, dict[str, _Key]] = {
    "server": {
        "listen": _Key(
            "127.0.0.1:8080",
            _listen,
            'address:port to serve on; the appliance image sets "0.0.0.0:443" (with tls)',
        ),
        "tls": _Key(False, _bool, "serve HTTPS (self-signed certificate generated if missing)"),
        "state_dir": _Key(
            str(DEFAULT_STATE_DIR), _path, "password hash, tokens, certificate (mode 0700)"
        ),
        "session_ttl_hours": _Key(
            12, _number(0, 24 * 366, lo_open=True), "browser session lifetime after login"
        ),
        "cert": _Key(
            None,
            _optional_path,
            "TLS certificate (PEM); default STATE_DIR/tls/cert.pem",
            "/var/lib/ipkvm/tls/cert.pem",
        ),
        "key": _Key(
            None,
            _optional_path,
            "TLS private key (PEM, mode 0600); default STATE_DIR/tls/key.pem",
            "/var/lib/ipkvm/tls/key.pem",
        ),
        "trusted_proxies": _Key(
            [],
            _networks,
            "reverse proxies (IPs or CIDR networks) trusted to name the client; none by default",
        ),
        "proxy_header": _Key(
            "x-forwarded-for",
            _choice("x-forwarded-for", "forwarded"),
            "header a trusted proxy sets: X-Forwarded-For or Forwarded (RFC 7239)",
        ),
        "header_timeout": _Key(10, _number(1, 300), "seconds to send a request's headers"),
        "keepalive_timeout": _Key(30, _number(1, 3600), "idle seconds before a close"),
        "max_connections": _Key(0, _int(0, 65536), "open connections; 0: from RLIMIT_NOFILE"),
    },
    "target": {
        "kind": _Key("demo", _choice("demo", "hardware"), "demo (simulated) or hardware"),
    },
    "hid": {
        "output": _Key(
            "auto",
            _choice("auto", "demo", "otg", "ch9329"),
            "auto: demo for the demo target, otg for hardware",
        ),
        "layout": _Key("us", _layout, "keyboard layout the target expects (for typing text)"),
        "pacing_ms": _Key(12, _number(0, 1000), "key press hold time and gap when typing"),
        "mouse": _Key("absolute", _choice("absolute", "relative"), "default mouse mode"),
    },
    "hid.otg": {
        "keyboard": _Key("/dev/hidg0", _path, "keyboard hidg device"),
        "mouse": _Key("/dev/hidg1", _path, "absolute mouse hidg device"),
        "mouse_rel": _Key("/dev/hidg2", _path, "relative mouse hidg device"),
    },
    "hid.ch9329": {
        "port": _Key("/dev/ttyUSB0", _path, "serial port of the CH9329"),
        "baud": _Key(9600, _int(1200, 921600), "serial speed (factory default 9600)"),
    },
    "gadget": {
        "root": _Key("/sys/kernel/config/usb_gadget", _path, "configfs usb_gadget directory"),
        "name": _Key("ipkvm", _name, "gadget directory name under root"),
        "udc": _Key("auto", _name, "UDC to bind; auto: the only one in udc_dir"),
        "udc_dir": _Key("/sys/class/udc", _path, "where UDCs are listed"),
        "mass_storage": _Key(False, _bool, "add a mass-storage function (virtual media)"),
    },
    "video": {
        "source": _Key(
            "auto",
            _choice("auto", "demo", "v4l2"),
            "auto: demo for the demo target, v4l2 for hardware",
        ),
        "device": _Key("/dev/video0", _path, "V4L2 capture device"),
        "width": _Key(1920, _int(160, 7680), "capture width"),
        "height": _Key(1080, _int(120, 4320), "capture height"),
        "fps": _Key(30, _int(1, 240), "capture frame rate"),
        "format": _Key("MJPG", _choice("MJPG", "YUYV"), "capture pixel format"),
    },
    "stream": {
        "jpeg_quality": _Key(80, _int(1, 100), "MJPEG quality"),
        "max_fps": _Key(30, _int(1, 240), "frame rate cap for streams"),
        "h264_bitrate": _Key(
            5000, _int(100, 100_000), "H.264 bitrate, kbit/s (CBR with a VBV cap)"
        ),
        "h264_gop": _Key(0, _int(0, 100_000), "frames between IDRs; 0: only when a viewer asks"),
        "h264_codec": _Key(
            "libx264",
            _choice("libx264", "h264_v4l2m2m", "auto"),
            "H.264 encoder; h264_v4l2m2m is the Raspberry Pi's hardware encoder",
        ),
    },
    "webrtc": {
        "ice_urls": _Key([], _ice_urls, "STUN/TURN servers; none by default (LAN)"),
        "turn_username": _Key("", _text, "TURN user name (for turn: URLs)"),
        "turn_password": _Key("", _text, "TURN password"),
        "max_peers": _Key(16, _int(1, 256), "most WebRTC viewers at once"),
        "connect_timeout": _Key(20, _number(1, 300), "seconds a viewer may take to connect"),
    },
    "demo": {
        "width": _Key(1280, _int(160, 7680), "demo screen width"),
        "height": _Key(720, _int(120, 4320), "demo screen height"),
        "stamp": _Key(False, _bool, "stamp a frame counter/timestamp (latency tests)"),
        "layout": _Key("us", _layout, "the demo host's keyboard layout"),
    },
}


# --------------------------------------------------------------------------- typed result


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str
    host: str
    port: int
    tls: bool
    state_dir: Path
    session_ttl_hours: float
    cert: Path
    """Resolved: ``server.cert`` or ``STATE_DIR/tls/cert.pem``."""
    key: Path
    trusted_proxies: tuple[ProxyNetwork, ...] = ()
    """Peers whose ``proxy_header`` is believed (empty: none; the TCP peer is the client)."""
    proxy_header: str = "x-forwarded-for"
    """``"x-forwarded-for"`` or ``"forwarded"``: the one header read from a trusted proxy."""
    header_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    max_connections: int = 0
    """0: derived from RLIMIT_NOFILE (see :mod:`appliance.api.connlimits`)."""

    @property
    def session_ttl(self) -> float:
        """Session lifetime in seconds (what AuthStore and the cookie Max-Age take)."""
        return self.session_ttl_hours * 3600.0


@dataclass(frozen=True, slots=True)
class TargetConfig:
    kind: str


@dataclass(frozen=True, slots=True)
class OtgConfig:
    keyboard: Path
    mouse: Path
    mouse_rel: Path


@dataclass(frozen=True, slots=True)
class Ch9329Config:
    port: Path
    baud: int


@dataclass(frozen=True, slots=True)
class HidConfig:
    output: str
    """Resolved: never "auto" ("demo", "otg" or "ch9329")."""
    layout: str
    pacing_ms: float
    mouse: str
    otg: OtgConfig
    ch9329: Ch9329Config


@dataclass(frozen=True, slots=True)
class GadgetConfig:
    root: Path
    name: str
    udc: str
    udc_dir: Path
    mass_storage: bool


@dataclass(frozen=True, slots=True)
class VideoConfig:
    source: str
    """Resolved: never "auto" ("demo" or "v4l2")."""
    device: Path
    width: int
    height: int
    fps: int
    format: str


@dataclass(frozen=True, slots=True)
class StreamConfig:
    jpeg_quality: int
    max_fps: int
    h264_bitrate: int
    h264_gop: int
    h264_codec: str


@dataclass(frozen=True, slots=True)
class WebRtcConfig:
    ice_urls: tuple[str, ...]
    turn_username: str
    turn_password: str
    max_peers: int
    connect_timeout: float = 20.0


@dataclass(frozen=True, slots=True)
class DemoConfig:
    width: int
    height: int
    stamp: bool
    layout: str


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration. Immutable: derive variants with :meth:`with_overrides`."""

    server: ServerConfig
    target: TargetConfig
    hid: HidConfig
    gadget: GadgetConfig
    video: VideoConfig
    stream: StreamConfig
    demo: DemoConfig
    webrtc: WebRtcConfig
    path: Path | None = field(default=None, compare=False)
    """The file this came from (None: built-in defaults)."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The TOML tables as written (before "auto" was resolved), for re-validation."""

    def with_overrides(
        self,
        *,
        listen: str | None = None,
        state_dir: Path | str | None = None,
        target: str | None = None,
        tls: bool | None = None,
    ) -> Config:
        """A new validated Config with command-line overrides applied (None = keep).

        Works on the file's raw values, so ``target="hardware"`` turns an "auto" HID output and
        video source into otg/v4l2 while explicit settings stay, and a new state dir moves the
        default certificate paths with it.
        """
        raw: dict[str, Any] = copy.deepcopy(dict(self.raw))
        server = raw.setdefault("server", {})
        if listen is not None:
            server["listen"] = listen
        if state_dir is not None:
            server["state_dir"] = str(state_dir)
        if tls is not None:
            server["tls"] = tls
        if target is not None:
            raw.setdefault("target", {})["kind"] = target
        return build_config(raw, path=self.path)

    def summary(self) -> str:
        """A few human lines: what will run, where (printed by ``ipkvm config check``)."""
        s = self.server
        scheme = "https" if s.tls else "http"
        lines = [
            f"listen     {scheme}://{s.listen}",
            f"state_dir  {s.state_dir}",
            f"target     {self.target.kind}",
            f"hid        {self.hid.output} (layout {self.hid.layout}, mouse {self.hid.mouse})",
            f"video      {self.video.source}"
            + (
                f" {self.video.device} {self.video.width}x{self.video.height}"
                f"@{self.video.fps} {self.video.format}"
                if self.video.source == "v4l2"
                else ""
            ),
        ]
        if self.hid.output == "otg":
            o = self.hid.otg
            lines.append(f"hidg       {o.keyboard} {o.mouse} {o.mouse_rel}")
        elif self.hid.output == "ch9329":
            lines.append(f"ch9329     {self.hid.ch9329.port} @ {self.hid.ch9329.baud}")
        if s.tls:
            lines.append(f"tls        {s.cert} {s.key}")
        if s.trusted_proxies:
            nets = " ".join(str(n) for n in s.trusted_proxies)
            lines.append(f"proxies    {nets} ({s.proxy_header})")
        return "\n".join(lines)


# --------------------------------------------------------------------------- validation


def _suggest(section: str, name: str) -> str:
    """A did-you-mean for an unknown key: a close sibling, or the same name in another section."""
    siblings = list(_SCHEMA.get(section, {})) + [
        s.rpartition(".")[2] for s in _SCHEMA if s.rpartition(".")[0] == section
    ]
    close = difflib.get_close_matches(name, siblings, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{section + '.' if section else ''}{close[0]}'?)"
    elsewhere = [f"{sec}.{name}" for sec, keys in _SCHEMA.items() if name in keys]
    if elsewhere:
        return f" (did you mean '{elsewhere[0]}'?)"
    return ""


def _validate(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key of ``raw`` and return {dotted key: typed value}, defaults filled in."""
    values: dict[str, Any] = {}

    def walk(table: Mapping[str, Any], section: str) -> None:
        keys = _SCHEMA.get(section, {})
        for name, value in table.items():
            dotted = f"{section}.{name}" if section else name
            if dotted in _SCHEMA:
                if not isinstance(value, dict):
                    raise ConfigError(dotted, f"must be a table ([{dotted}]), not {value!r}")
                walk(value, dotted)
            elif name in keys:
                values[dotted] = keys[name].check(dotted, value)
            else:
                raise ConfigError(
                    dotted, f"unknown key '{dotted}'{_suggest(section, name)}", name_key=False
                )

    walk(raw, "")
    for section, keys in _SCHEMA.items():
        for name, spec in keys.items():
            dotted = f"{section}.{name}"
            if dotted not in values:
                values[dotted] = (
                    spec.check(dotted, spec.default) if spec.default is not None else None
                )
    return values


def build_config(raw: Mapping[str, Any], *, path: Path | None = None) -> Config:
    """Validate parsed TOML tables into a :class:`Config` (raises :class:`ConfigError`)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(None, "configuration must be a table")
    v = _validate(raw)
    host, port = parse_listen("server.listen", v["server.listen"])
    state_dir: Path = v["server.state_dir"]
    kind: str = v["target.kind"]
    output: str = v["hid.output"]
    if output == "auto":
        output = "demo" if kind == "demo" else "otg"
    source: str = v["video.source"]
    if source == "auto":
        source = "demo" if kind == "demo" else "v4l2"

    def sub(prefix: str) -> dict[str, Any]:
        return {k.rpartition(".")[2]: val for k, val in v.items() if k.rpartition(".")[0] == prefix}

    hid = sub("hid")
    hid.update(
        output=output, otg=OtgConfig(**sub("hid.otg")), ch9329=Ch9329Config(**sub("hid.ch9329"))
    )
    video = sub("video")
    video["source"] = source
    return Config(
        server=ServerConfig(
            listen=v["server.listen"],
            host=host,
            port=port,
            tls=v["server.tls"],
            state_dir=state_dir,
            session_ttl_hours=v["server.session_ttl_hours"],
            cert=v["server.cert"] or state_dir / "tls" / "cert.pem",
            key=v["server.key"] or state_dir / "tls" / "key.pem",
            trusted_proxies=v["server.trusted_proxies"],
            proxy_header=v["server.proxy_header"],
            header_timeout=v["server.header_timeout"],
            keepalive_timeout=v["server.keepalive_timeout"],
            max_connections=v["server.max_connections"],
        ),
        target=TargetConfig(kind=kind),
        hid=HidConfig(**hid),
        gadget=GadgetConfig(**sub("gadget")),
        video=VideoConfig(**video),
        stream=StreamConfig(**sub("stream")),
        demo=DemoConfig(**sub("demo")),
        webrtc=WebRtcConfig(**sub("webrtc")),
        path=path,
        raw=copy.deepcopy(dict(raw)),
    )


def load_config(path: Path | None) -> Config:
    """Read and validate ``path``; None gives the built-in defaults.

    The caller decides whether a default file applies (see :func:`find_config`): a missing file
    that was asked for is an error, never silently the defaults.
    """
    if path is None:
        return build_config({})
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(None, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(None, f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(None, f"{path}: invalid TOML: {exc}") from None
    return build_config(raw, path=path)


def find_config(explicit: Path | None) -> Path | None:
    """The file ``serve`` should load: the one given, else /etc/ipkvm/ipkvm.toml if it exists."""
    if explicit is not None:
        return explicit
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def _toml_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def defaults_toml() -> str:
    """Every key with its default and a one-line comment: ``ipkvm config defaults``."""
    out = [
        "# ipkvm configuration (TOML). Every key is optional; shown here with its default.",
        "# Unknown keys are errors. Check a file with: ipkvm config check FILE",
    ]
    for section, keys in _SCHEMA.items():
        out.append("")
        out.append(f"[{section}]")
        for name, spec in keys.items():
            out.append(f"# {spec.help}")
            if spec.default is None:
                out.append(f"# {name} = {_toml_value(spec.example)}")
            else:
                out.append(f"{name} = {_toml_value(spec.default)}")
    return "\n".join(out) + "\n"


def known_keys() -> list[str]:
    """All dotted keys, in schema order (docs and tests use it)."""
    return [f"{section}.{name}" for section, keys in _SCHEMA.items() for name in keys]
