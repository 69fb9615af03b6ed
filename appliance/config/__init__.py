"""The appliance configuration: one TOML file, validated completely before anything starts.

Why a hand-written schema instead of trusting the file: a typo in a device path or a key name on
an appliance with no screen is found only at 3 a.m. when the target is unreachable. So every key is
declared with its type, range, default and doc, once, as a field of a section dataclass
(:mod:`.options` explains how); unknown keys are errors (with a "did you mean"), and every message
names the dotted key and what is wrong with it.

Layout: :mod:`.options` (declaring), :mod:`.checks` (value checks), :mod:`.walk` (validating),
:mod:`.render` (``config defaults``), one module per group of sections (:mod:`.server`,
:mod:`.target`, :mod:`.hid`, :mod:`.video`, :mod:`.power`, :mod:`.switch`,
:mod:`.passthrough`, :mod:`.media`), :mod:`.root` (``Config``) and :mod:`.files` (reading).

Only the standard library is imported: ``ipkvm config check`` must start fast on a Pi Zero.
"""

from __future__ import annotations

from appliance.config.checks import ProxyNetwork, parse_listen
from appliance.config.context import TargetKind
from appliance.config.errors import ConfigError
from appliance.config.files import DEFAULT_CONFIG_PATH, find_config, load_config
from appliance.config.hid import (
    Ch9329Config,
    GadgetConfig,
    HidConfig,
    HidOutput,
    MouseMode,
    OtgConfig,
)
from appliance.config.media import MediaConfig
from appliance.config.passthrough import PassthroughConfig
from appliance.config.power import AtxConfig, WolConfig
from appliance.config.root import Config, build_config, defaults_toml, known_keys
from appliance.config.server import DEFAULT_STATE_DIR, ProxyHeader, ServerConfig
from appliance.config.switch import PortConfig, SwitchConfig, SwitchDriverName
from appliance.config.target import DemoConfig, TargetConfig
from appliance.config.video import (
    H264Codec,
    PixelFormat,
    StreamConfig,
    VideoConfig,
    VideoSource,
    WebRtcConfig,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_STATE_DIR",
    "AtxConfig",
    "Ch9329Config",
    "Config",
    "ConfigError",
    "DemoConfig",
    "GadgetConfig",
    "H264Codec",
    "HidConfig",
    "HidOutput",
    "MediaConfig",
    "MouseMode",
    "OtgConfig",
    "PassthroughConfig",
    "PixelFormat",
    "PortConfig",
    "ProxyHeader",
    "ProxyNetwork",
    "ServerConfig",
    "StreamConfig",
    "SwitchConfig",
    "SwitchDriverName",
    "TargetConfig",
    "TargetKind",
    "VideoConfig",
    "VideoSource",
    "WebRtcConfig",
    "WolConfig",
    "build_config",
    "defaults_toml",
    "find_config",
    "known_keys",
    "load_config",
    "parse_listen",
]
