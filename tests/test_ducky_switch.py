"""DuckyScript SWITCH: parsed with line/column errors, run through the switch controller on the
appliance (waits for the confirmed port; typing afterwards uses the new port's layout), and run
line by line from a workstation through the client; plus the ``ipkvm switch`` command."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from appliance.auth import AuthStore
from appliance.client import IpkvmClient, IpkvmError
from appliance.scripting import ducky
from tests.conftest import start_server

DEMO = """
[switch]
driver = "demo"
count = 3
[[switch.ports]]
name = "web-01"
[[switch.ports]]
name = "db 01"
layout = "de"
"""


def test_parse_switch_forms() -> None:
    script = ducky.parse('SWITCH 2\nswitch web-01\n  SWITCH "db 01"\nSWITCH "7"')
    assert [c.port for c in script.commands] == [2, "web-01", "db 01", "7"]  # type: ignore[union-attr]
    assert ducky.describe(script.commands[0]) == "SWITCH 2"


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("SWITCH", 1, 1, "needs a port"),
        ("REM\nSWITCH 0", 2, 8, "between 1 and 99"),
        ('SWITCH "db 01', 1, 8, "closing quote"),
        ("SWITCH db 01", 1, 11, "quote a name"),
        ('SWITCH "a" b', 1, 11, "unexpected"),
        ('SWITCH ""', 1, 8, "empty"),
    ],
)
def test_switch_errors_name_line_and_column(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(ducky.DuckyError) as err:
        ducky.parse(text)
    assert (err.value.line, err.value.column) == (line, column), err.value
    assert words in err.value.message


async def test_switch_runs_on_the_appliance_and_from_a_workstation(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path, DEMO)
    rack = srv.appliance.target.rack  # type: ignore[attr-defined]
    try:
        async with IpkvmClient(srv.url, password=srv.password) as client:
            # "z" on the "de" port is typed with the German layout and reads "z" there
            await client.run_script('SWITCH "db 01"\nSTRING z\nSWITCH 3\nSTRING q')
            assert rack.active == 2
            assert rack.machines[1].state()["text"].endswith("z")
            assert rack.machines[2].state()["text"].endswith("q")
            with pytest.raises(IpkvmError, match="no port named"):
                await client.run_script("SWITCH nope")
            executor = ducky.ClientExecutor(client)
            await ducky.run(ducky.parse("SWITCH web-01"), executor)
            assert rack.active == 0
            with pytest.raises(ducky.ScriptFailed) as failed:
                await ducky.run(ducky.parse("REM\nSWITCH 9"), executor)
            assert failed.value.line == 2 and "no port 9" in failed.value.message
    finally:
        await runner.cleanup()


async def test_cli_switch_show_and_select(tmp_path: Path) -> None:
    srv, runner = await start_server(tmp_path, DEMO)
    rack = srv.appliance.target.rack  # type: ignore[attr-defined]
    _, token = AuthStore(srv.state_dir).create_token("cli-test")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPKVM_")}
    env.update(HOME=str(home), IPKVM_URL=srv.url, IPKVM_TOKEN=token)

    async def ipkvm(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "appliance", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    try:
        code, out, _ = await ipkvm("switch")
        assert code == 0
        assert "demo switch: online" in out and "*  1  web-01" in out
        code, out, _ = await ipkvm("switch", "db 01")
        assert code == 0 and "switched to port 2 (db 01)" in out
        assert rack.active == 1
        code, out, _ = await ipkvm("switch", "3")
        assert code == 0 and rack.active == 2
        code, _, err = await ipkvm("switch", "nine")
        assert code == 1 and err.startswith("ipkvm switch: no port named 'nine'")
    finally:
        await runner.cleanup()
