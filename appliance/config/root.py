"""The whole configuration: the sections together, built and re-built from raw TOML tables."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import render
from appliance.config.context import Context
from appliance.config.errors import ConfigError
from appliance.config.hid import GadgetConfig, HidConfig
from appliance.config.media import MediaConfig
from appliance.config.passthrough import PassthroughConfig
from appliance.config.power import AtxConfig, WolConfig
from appliance.config.server import ServerConfig
from appliance.config.switch import SwitchConfig
from appliance.config.target import DemoConfig, TargetConfig
from appliance.config.video import StreamConfig, VideoConfig, WebRtcConfig
from appliance.config.walk import build, validate


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration. Immutable: derive variants with :meth:`with_overrides`.

    Each section field is a ``[table]`` of the file, in the order ``ipkvm config defaults`` prints
    them.
    """

    server: ServerConfig
    target: TargetConfig
    hid: HidConfig
    gadget: GadgetConfig
    video: VideoConfig
    stream: StreamConfig
    webrtc: WebRtcConfig
    demo: DemoConfig
    atx: AtxConfig
    wol: WolConfig
    switch: SwitchConfig
    passthrough: PassthroughConfig
    media: MediaConfig
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
        if self.switch.driver != "none":
            lines.append(f"switch     {self.switch.driver}")
        if self.passthrough.enabled:
            lines.append(f"passthrough {', '.join(self.passthrough.devices) or 'all'}")
        if s.tls:
            lines.append(f"tls        {s.cert} {s.key}")
        if s.trusted_proxies:
            nets = " ".join(str(n) for n in s.trusted_proxies)
            lines.append(f"proxies    {nets} ({s.proxy_header})")
        return "\n".join(lines)


def build_config(raw: Mapping[str, Any], *, path: Path | None = None) -> Config:
    """Validate parsed TOML tables into a :class:`Config` (raises :class:`ConfigError`)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(None, "configuration must be a table")
    values = validate(Config, raw)
    # The two inputs of derived options, by key: the walker has checked and typed them already.
    context = Context(target=values["target.kind"], state_dir=values["server.state_dir"])
    return build(Config, "", values, context, path=path, raw=copy.deepcopy(dict(raw)))


def defaults_toml() -> str:
    """Every key with its default and a one-line comment: ``ipkvm config defaults``."""
    return render.defaults_toml(Config)


def known_keys() -> list[str]:
    """All dotted keys, in declaration order (docs and tests use it)."""
    return render.known_keys(Config)
