"""The ``ipkvm`` client commands as a user runs them: real subprocesses against a real appliance
with the demo target, checking exit codes, stderr lines, files written and the demo's screen."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from appliance.auth import AuthStore
from appliance.targets.demo.machine import DemoMachine
from tests.conftest import Server, free_port


@dataclass
class Result:
    code: int
    out: str
    err: str
    raw: bytes


@pytest.fixture
def env(server: Server, tmp_path: Path) -> dict[str, str]:
    _, token = AuthStore(server.state_dir).create_token("cli-test")
    home = tmp_path / "home"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("IPKVM_")}
    return {
        **base,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "IPKVM_URL": server.url,
        "IPKVM_TOKEN": token,
    }


async def ipkvm(
    env: dict[str, str], *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"), err.decode(), out)


def demo(server: Server) -> DemoMachine:
    machine = server.appliance.target.machine  # type: ignore[attr-defined]
    assert isinstance(machine, DemoMachine)
    return machine


def png_file(path: Path, image: Any) -> Path:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def noise_png(path: Path) -> Path:
    rng = np.random.default_rng(3)
    return png_file(path, rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))


# ---------------------------------------------------------------------------- commands
async def test_type_round_trip(server: Server, env: dict[str, str]) -> None:
    r = await ipkvm(env, "type", "hello cli")
    assert (r.code, r.err) == (0, "")
    assert demo(server).state()["text"] == "hello cli"
    r = await ipkvm(env, "type", "-", "--enter", stdin=b" +stdin")
    assert r.code == 0, r.err
    state = demo(server).state()
    assert state["text"] == "hello cli +stdin"
    assert state["editing"] is False  # the Enter ended editing


async def test_type_reports_untypable_characters(server: Server, env: dict[str, str]) -> None:
    r = await ipkvm(env, "type", "a€b")
    assert r.code == 0
    assert r.err == "ipkvm type: skipped 1 character(s) the layout cannot type: '€'\n"
    assert demo(server).state()["text"] == "ab"


async def test_key_and_state(server: Server, env: dict[str, str]) -> None:
    r = await ipkvm(env, "key", "right", "right")
    assert r.code == 0, r.err
    assert demo(server).state()["tab"] == "Boot"
    r = await ipkvm(env, "key", "ctrl+nosuch")
    assert (r.code, r.err) == (1, "ipkvm key: unknown key name 'nosuch'\n")
    r = await ipkvm(env, "state")
    assert r.code == 0
    assert '"kind": "demo"' in r.out


async def test_snapshot_png_and_jpeg(tmp_path: Path, env: dict[str, str]) -> None:
    r = await ipkvm(env, "snapshot", str(tmp_path / "out.png"))
    assert r.code == 0, r.err
    image = cv2.imread(str(tmp_path / "out.png"))
    assert image is not None and image.shape == (720, 1280, 3)
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")
    r = await ipkvm(env, "snapshot", str(tmp_path / "small.jpg"), "--width", "640")
    assert r.code == 0, r.err
    assert (tmp_path / "small.jpg").read_bytes().startswith(b"\xff\xd8")
    assert cv2.imread(str(tmp_path / "small.jpg")).shape == (360, 640, 3)
    r = await ipkvm(env, "snapshot", str(tmp_path / "out.gif"))
    assert r.code == 2 and "use .png, .jpg or --format" in r.err


async def test_wait_for_image_found_and_timeout_exit_3(
    server: Server, tmp_path: Path, env: dict[str, str]
) -> None:
    await ipkvm(env, "snapshot", str(tmp_path / "screen.png"))
    x, y, w, h = demo(server).tab_rect("Main")
    screen = cv2.imread(str(tmp_path / "screen.png"))
    tpl = png_file(tmp_path / "main.png", screen[y : y + h, x : x + w])
    r = await ipkvm(env, "wait-for", "--image", str(tpl), "--timeout", "5")
    assert r.code == 0, r.err
    assert f'"x": {x}, "y": {y}' in r.out

    noise = noise_png(tmp_path / "noise.png")
    r = await ipkvm(env, "wait-for", "--image", str(noise), "--timeout", "0.5")
    assert r.code == 3
    assert r.err.startswith("ipkvm wait-for: timed out after 0.5 s waiting for the image")
    assert r.err.count("\n") == 1
    r = await ipkvm(
        env, "wait-for", "--image", str(noise), "--timeout", "1", "--region", "0,0,5000,5"
    )
    assert r.code == 1 and "outside the 1280x720 picture" in r.err


async def test_wait_for_usage_errors_exit_2(env: dict[str, str]) -> None:
    assert (await ipkvm(env, "wait-for")).code == 2
    r = await ipkvm(env, "wait-for", "--text", "x", "--region", "1,2,3")
    assert r.code == 2 and "x,y,w,h" in r.err
    r = await ipkvm(env, "wait-for", "--text", "x", "--timeout", "0")
    assert r.code == 2


# ---------------------------------------------------------------------------- run
BOOT_SCRIPT = """\
REM change Boot Option #1, then fill in the asset tag
RIGHT
RIGHT
WAITFOR templates/boot.png 10
DOWN
ENTER
LEFT
LEFT
STRING {tag}
"""


async def boot_template(server: Server, env: dict[str, str], folder: Path) -> None:
    """Cut the Boot tab's first line from a snapshot of the Boot screen, then go back to Main."""
    machine = demo(server)
    hub = server.appliance.hub  # type: ignore[attr-defined]
    assert (await ipkvm(env, "key", "right", "right")).code == 0
    seq = (await hub.next_frame(0)).seq
    await hub.next_frame(seq)  # a frame rendered after the keys
    assert (await ipkvm(env, "snapshot", str(folder / "boot-screen.png"))).code == 0
    assert (await ipkvm(env, "key", "left", "left")).code == 0
    x, y, w, h = machine.item_rect("Boot", "Boot Mode")
    image = cv2.imread(str(folder / "boot-screen.png"))
    (folder / "templates").mkdir()
    png_file(folder / "templates" / "boot.png", image[y : y + h, x : x + w])


@pytest.mark.parametrize("local", [False, True], ids=["on-appliance", "local"])
async def test_run_script_with_waitfor(
    server: Server, tmp_path: Path, env: dict[str, str], local: bool
) -> None:
    await boot_template(server, env, tmp_path)
    script = tmp_path / "setup.txt"
    script.write_text(BOOT_SCRIPT.format(tag="cli-run"))
    # Run from another directory: templates are found next to the script.
    args = ["run", str(script), *(["--local"] if local else [])]
    r = await ipkvm(env, *args, cwd=Path("/"))
    assert (r.code, r.err) == (0, "")
    state = demo(server).state()
    assert state["settings"]["Boot/Boot Option #1"] == "Hard Disk"
    assert (state["tab"], state["text"]) == ("Main", "cli-run")


async def test_run_parse_error_sends_nothing(
    server: Server, tmp_path: Path, env: dict[str, str]
) -> None:
    machine = demo(server)
    before, reports = machine.state(), machine.reports
    script = tmp_path / "broken.txt"
    script.write_text("STRING would be typed\nRIGHT\nCTRL ALT DELET\n")
    r = await ipkvm(env, "run", str(script))
    assert r.code == 1
    assert r.err == f"ipkvm run: {script}:3:10: unknown command or key 'DELET'\n"
    script.write_text("ENTER\n  WAITFOR nothere.png\n")
    r = await ipkvm(env, "run", str(script), "--local")
    assert r.code == 1
    assert r.err.startswith(f"ipkvm run: {script}:2:11: template ")
    assert "nothere.png" in r.err
    script.write_text("STRING fine\nSTRING 5€\n")
    for extra in ([], ["--local"]):
        r = await ipkvm(env, "run", str(script), *extra)
        assert (r.code, r.err) == (
            1,
            f"ipkvm run: {script}:2:9: the 'us' layout cannot type '€' (U+20AC)\n",
        )
    assert machine.reports == reports
    assert machine.state() == before


async def test_run_waitfor_timeout_exit_3(
    server: Server, tmp_path: Path, env: dict[str, str]
) -> None:
    noise_png(tmp_path / "never.png")
    script = tmp_path / "wait.txt"
    script.write_text("WAITFOR never.png 0.5\nSTRING not typed\n")
    for extra in ([], ["--local"]):
        r = await ipkvm(env, "run", str(script), *extra)
        assert r.code == 3, r.err
        assert r.err.startswith(
            f"ipkvm run: {script}:1: WAITFOR never.png: timed out after 0.5 s waiting for the image"
        )
    assert demo(server).state()["text"] == ""


async def test_run_check_only_parses(server: Server, tmp_path: Path, env: dict[str, str]) -> None:
    reports = demo(server).reports
    script = tmp_path / "ok.txt"
    script.write_text("REM\nSTRING x\nREPEAT 3\n")
    r = await ipkvm(env, "run", "--check", str(script))
    assert (r.code, r.out) == (0, f"{script}: 2 commands, parses\n")
    assert demo(server).reports == reports


# ---------------------------------------------------------------------------- connection
async def test_credentials_from_file_token_file_and_errors(
    server: Server, tmp_path: Path, env: dict[str, str]
) -> None:
    token = env.pop("IPKVM_TOKEN")
    r = await ipkvm(env, "state")
    assert r.code == 1
    assert r.err.startswith("ipkvm state: ") and "IPKVM_TOKEN" in r.err

    (tmp_path / "token").write_text(token + "\n")
    r = await ipkvm(env, "state", "--token-file", str(tmp_path / "token"))
    assert r.code == 0, r.err

    url = env.pop("IPKVM_URL")
    cfg = Path(env["XDG_CONFIG_HOME"]) / "ipkvm"
    cfg.mkdir(parents=True)
    (cfg / "client.toml").write_text(f'url = "{url}"\ntoken = "{token}"\n')
    r = await ipkvm(env, "type", "from toml")
    assert r.code == 0, r.err
    assert demo(server).state()["text"] == "from toml"

    dead = f"http://127.0.0.1:{free_port()}"
    r = await ipkvm(env, "state", "--url", dead)
    assert r.code == 1
    assert r.err.startswith(f"ipkvm state: cannot reach {dead}")
    assert r.err.count("\n") == 1


async def on_a_terminal(env: dict[str, str], *args: str) -> bytes:
    """Run ``ipkvm ARGS`` with stderr on a pseudo-terminal; return what it showed there."""
    master, slave = os.openpty()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "appliance",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        slave = -1
        async with asyncio.timeout(60):
            assert await proc.wait() == 0
        shown = b""
        os.set_blocking(master, False)
        while True:
            try:
                chunk = os.read(master, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return shown


async def test_progress_on_a_terminal_only(
    server: Server, tmp_path: Path, env: dict[str, str]
) -> None:
    shown = await on_a_terminal(env, "type", "--pacing-ms", "5", "progress on a tty")
    assert b"typed 17/17" in shown
    assert shown.endswith(b"\r\x1b[K")  # the status line is wiped at the end
    assert demo(server).state()["text"] == "progress on a tty"
    script = tmp_path / "p.txt"
    script.write_text("STRING !\nENTER\n")
    for extra in ([], ["--local"]):
        shown = await on_a_terminal(env, "run", str(script), *extra)
        assert b"line 2 (1/2): Enter" in shown
        assert shown.endswith(b"\r\x1b[K")


async def test_target_offline_is_one_line_exit_1(server: Server, env: dict[str, str]) -> None:
    demo(server).set_power(False)
    # The first paste finds out the hard way (the controller gives up after a few seconds)...
    r = await ipkvm(env, "type", "x")
    assert r.code == 1
    assert r.err.startswith("ipkvm type: target offline: ")
    # ...after that the appliance knows, and says so at once.
    r = await ipkvm(env, "type", "x")
    assert (r.code, r.err) == (1, "ipkvm type: target offline: demo target is powered off\n")
    script_dir = Path(env["HOME"])
    (script_dir / "s.txt").write_text("STRING x\n")
    r = await ipkvm(env, "run", str(script_dir / "s.txt"))
    assert (r.code, r.err) == (1, "ipkvm run: target offline: demo target is powered off\n")


async def test_ctrl_c_cancels_the_script_on_the_appliance(
    server: Server, tmp_path: Path, env: dict[str, str]
) -> None:
    machine = demo(server)
    hub = server.appliance.hub  # type: ignore[attr-defined]
    script = tmp_path / "slow.txt"
    script.write_text("STRING a\nDELAY 20000\nSTRING b\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "appliance",
        "run",
        str(script),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    seq = 0
    async with asyncio.timeout(30):
        while machine.state()["text"] != "a":
            seq = (await hub.next_frame(seq)).seq
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 130, err
    scripts = server.appliance.jobs.tasks  # type: ignore[attr-defined]
    assert not scripts  # the appliance stopped it
    assert machine.state()["text"] == "a"
