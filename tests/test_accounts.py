"""Users, two-factor login, the audit log, migration and concurrent edits (real server, real CLI).

TOTP runs on an injected wall clock (``AuthStore(clock=...)``): codes are computed for chosen
instants, so the window edges are tested exactly, without sleeping.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance import totp
from appliance.api.auth import AUTH_STORE
from appliance.auth import AuthError, AuthStore, StateTooNew
from tests.conftest import Server, basic_header, start_server
from tests.test_auth import FakeClock
from tests.test_web_auth import cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "state_v1"
SWITCH = '[switch]\ndriver = "demo"\ncount = 3\npoll_interval = 0.2\n'


# --------------------------------------------------------------------------- TOTP


def enrolled(tmp_path: Path, clock: FakeClock) -> tuple[AuthStore, str, list[str]]:
    store = AuthStore(tmp_path, clock=clock)
    store.ensure_admin()
    store.add_user("alice", "alice-pass-1", "operator")
    secret = store.totp_begin("alice")
    with pytest.raises(AuthError, match="wrong code"):
        store.totp_confirm("alice", "000000" if totp.code_at(secret, clock()) != "000000" else "1")
    codes = store.totp_confirm("alice", totp.code_at(secret, clock()))
    return store, secret, codes


def test_totp_window_edges_and_replay(tmp_path: Path) -> None:
    clock = FakeClock()
    clock.now = 1_800_000_000.0  # the start of a 30 s step
    store, secret, _ = enrolled(tmp_path, clock)
    assert store.totp_enabled("alice")
    # the enrolment code's step is used up: the same code cannot log in
    assert store.totp_verify("alice", totp.code_at(secret, clock.now)) is None
    clock.advance(60)  # two steps later
    now = clock.now
    assert store.totp_verify("alice", totp.code_at(secret, now - 61)) is None  # 3 steps back
    assert store.totp_verify("alice", totp.code_at(secret, now + 60)) is None  # 2 steps ahead
    previous = totp.code_at(secret, now - 30)  # one step back: inside the window
    assert store.totp_verify("alice", previous) == "totp"
    assert store.totp_verify("alice", previous) is None  # replay refused
    current = totp.code_at(secret, now + 29.9)  # last instant of the current step
    assert store.totp_verify("alice", current) == "totp"
    assert store.totp_verify("alice", current) is None  # replay refused
    # a code from an earlier step than the last one used is refused even though in the window
    assert store.totp_verify("alice", previous) is None
    nxt = totp.code_at(secret, now + 30)  # one step ahead (clock skew): accepted once
    assert store.totp_verify("alice", nxt) == "totp"
    assert AuthStore(tmp_path, clock=clock).totp_verify("alice", nxt) is None  # kept on disk
    assert store.totp_verify("alice", "12345") is None and store.totp_verify("alice", "") is None


def test_recovery_codes_are_single_use(tmp_path: Path) -> None:
    clock = FakeClock()
    store, _, codes = enrolled(tmp_path, clock)
    assert len(codes) == 10 and len(set(codes)) == 10
    raw = (tmp_path / "users.json").read_text()
    assert not any(c in raw or c.replace("-", "") in raw for c in codes)  # only digests stored
    assert store.totp_verify("alice", codes[0].upper()) == "recovery"  # typed in capitals
    assert store.totp_verify("alice", codes[0]) is None
    assert store.user_info("alice").recovery_left == 9  # type: ignore[union-attr]
    assert store.totp_verify("bob", codes[1]) is None  # another user's codes are not shared


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv, runner = await start_server(tmp_path, SWITCH)
    try:
        yield srv
    finally:
        await runner.cleanup()


def entries(srv: Server) -> list[dict[str, Any]]:
    path = srv.state_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def login(
    http: aiohttp.ClientSession, user: str, password: str, code: str | None = None
) -> aiohttp.ClientResponse:
    body = {"user": user, "password": password, **({"code": code} if code else {})}
    async with http.post("/api/auth/login", json=body) as resp:
        await resp.read()
        return resp


async def test_two_factor_login_over_http(server: Server) -> None:
    store = server.app[AUTH_STORE]
    store.add_user("alice", "alice-pass-1", "operator")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=server.url, cookie_jar=jar) as http:
        assert (await login(http, "alice", "alice-pass-1")).status == 200
        async with http.post("/api/account/totp/setup") as resp:
            assert resp.status == 200
            setup = await resp.json()
        assert setup["svg"].startswith("<svg") and "otpauth://totp/" in setup["uri"]
        import time

        code = totp.code_at(setup["secret"], time.time())
        async with http.post("/api/account/totp/enable", json={"code": code}) as resp:
            assert resp.status == 200
            recovery = (await resp.json())["recovery_codes"]
    async with aiohttp.ClientSession(base_url=server.url) as http:
        resp = await login(http, "alice", "alice-pass-1")
        assert resp.status == 401
        async with http.post(
            "/api/auth/login", json={"user": "alice", "password": "alice-pass-1"}
        ) as r:
            assert (await r.json())["totp_required"] is True
        assert (await login(http, "alice", "alice-pass-1", code)).status == 401  # used at enrolment
        assert (await login(http, "alice", "alice-pass-1", recovery[0])).status == 200
        assert (await login(http, "alice", "alice-pass-1", recovery[0])).status == 401
        # HTTP Basic is unaffected by TOTP (scripts), and carries alice's role
        basic = basic_header("alice", "alice-pass-1")
        async with http.get("/api/auth/me", headers=basic) as r:
            me = await r.json()
            assert me["role"] == "operator" and me["totp"] is True
    outcomes = [(e["user"], e["outcome"]) for e in entries(server) if e["event"] == "login"]
    assert ("alice", "failed") in outcomes and outcomes[-1] == ("alice", "failed")


async def test_required_enrolment_leaves_only_account_routes(server: Server) -> None:
    store = server.app[AUTH_STORE]
    store.add_user("bob", "bob-pass-12", "operator")
    store.set_totp_required("bob", True)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=server.url, cookie_jar=jar) as http:
        assert (await login(http, "bob", "bob-pass-12")).status == 200
        async with http.get("/api/auth/me") as r:
            assert (await r.json())["enrolment_needed"] is True
        async with http.get("/api/state") as r:
            assert r.status == 403 and "two-factor" in (await r.json())["error"]
        async with http.post("/api/account/totp/setup") as r:
            assert r.status == 200


# --------------------------------------------------------------------------- audit


async def test_audit_entries_for_each_action(server: Server) -> None:
    admin = server.basic()
    secret_text = "hunter2-do-not-log"
    async with aiohttp.ClientSession(base_url=server.url, headers=admin) as http:

        async def call(method: str, path: str, body: Any = None) -> int:
            async with http.request(method, path, json=body) as resp:
                await resp.read()
                return resp.status

        assert (
            await call(
                "POST",
                "/api/users",
                {"name": "carol", "password": "carol-pass-1", "role": "viewer"},
            )
            == 200
        )
        assert await call("PATCH", "/api/users/carol", {"role": "operator"}) == 200
        assert await call("POST", "/api/tokens", {"name": "ci", "user": "carol"}) == 200
        assert await call("DELETE", "/api/tokens/ci") == 200
        assert await call("POST", "/api/switch/select", {"port": 2}) == 200
        assert await call("POST", "/api/power", {"action": "on"}) in (200, 409)
        assert await call("POST", "/api/hid/type", {"text": secret_text}) == 200
        assert await call("POST", "/api/scripts/run", {"script": "STRING " + secret_text}) == 200
        assert await call("POST", "/api/control", {"action": "take"}) == 200
        assert await call("DELETE", "/api/users/carol") == 200
        async with http.get("/api/audit?limit=50") as resp:
            via_api = (await resp.json())["entries"]
    async with aiohttp.ClientSession(base_url=server.url) as http:
        await login(http, "admin", "wrong-password")
        viewer_auth = basic_header("nobody", "nobody-pass")
        async with http.get("/api/state", headers=viewer_auth) as resp:
            assert resp.status == 401
    log = entries(server)
    raw = (server.state_dir / "audit.jsonl").read_text()
    assert secret_text not in raw  # paste and script: lengths only
    by_event = {e["event"]: e for e in log}
    for event in (
        "user.add",
        "user.change",
        "token.create",
        "token.revoke",
        "switch.select",
        "power",
        "paste",
        "script.run",
        "control",
        "user.remove",
        "login",
    ):
        assert event in by_event, f"no {event} entry in {sorted(by_event)}"
        entry = by_event[event]
        assert entry["address"] == "127.0.0.1" and entry["time"].endswith("Z")
    assert by_event["paste"]["length"] == len(secret_text) and by_event["paste"]["user"] == "admin"
    assert by_event["script.run"]["length"] == len("STRING " + secret_text)
    assert by_event["switch.select"]["port"] == 2 and by_event["switch.select"]["outcome"] == "ok"
    assert by_event["user.add"]["target"] == "carol"
    assert by_event["token.create"]["owner"] == "carol"
    fails = [e for e in log if e["event"] == "login" and e["outcome"] == "failed"]
    assert {e["user"] for e in fails} >= {"admin", "nobody"}
    assert [e["event"] for e in via_api][:1] == ["user.remove"]  # newest first


async def test_lockout_and_denied_actions_are_audited(server: Server) -> None:
    store = server.app[AUTH_STORE]
    store.add_user("vic", "vic-pass-12", "viewer")
    async with aiohttp.ClientSession(base_url=server.url) as http:
        async with http.post(
            "/api/power", json={"action": "on"}, headers=basic_header("vic", "vic-pass-12")
        ) as resp:
            assert resp.status == 403
        statuses = [(await login(http, "admin", f"guess-{i}-xx")).status for i in range(5)]
    assert statuses[-1] == 429
    log = entries(server)
    locked = [e for e in log if e["event"] == "login" and e["outcome"] == "locked"]
    assert statuses.count(429) >= 2 and len(locked) == 1  # one line per 10 s, not per attempt
    denied = [e for e in log if e["event"] == "power" and e["outcome"] == "denied"]
    assert denied and denied[0]["user"] == "vic"


def test_audit_rotation_is_size_bounded(tmp_path: Path) -> None:
    from appliance.audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl", max_bytes=2000, keep=2)
    for i in range(200):
        log.record("paste", user="u", address="::1", length=i)
    files = log.files()
    assert [p.name for p in files] == ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
    assert sum(p.stat().st_size for p in files) < 3 * 2000 + 200
    newest = log.tail(3)
    assert [e["length"] for e in newest] == [199, 198, 197]


# --------------------------------------------------------------------------- migration


async def test_migration_from_the_previous_release_keeps_everyone_logged_in(
    tmp_path: Path,
) -> None:
    from appliance.api.server import start_server as serve
    from appliance.config import load_config

    state = tmp_path / "state"
    shutil.copytree(FIXTURE, state)
    (state / "secrets.json").unlink()
    secrets = json.loads((FIXTURE / "secrets.json").read_text())
    cfg = tmp_path / "ipkvm.toml"
    cfg.write_text("")
    config = load_config(cfg).with_overrides(
        listen="127.0.0.1:0", state_dir=state, target=None, tls=None
    )
    store = AuthStore(state, session_ttl=3600)
    assert store.ensure_admin() is None  # the old password stays
    running = await serve(config, store)
    try:
        async with aiohttp.ClientSession(base_url=running.url) as http:
            cookie = {"Cookie": f"ipkvm_session={secrets['session']}"}
            async with http.get("/api/auth/me", headers=cookie) as resp:
                assert resp.status == 200, "the old session must survive the upgrade"
                assert (await resp.json())["role"] == "admin"
            bearer = {"Authorization": f"Bearer {secrets['token']}"}
            async with http.get("/api/auth/me", headers=bearer) as resp:
                assert resp.status == 200 and (await resp.json())["user"] == "admin"
            basic = basic_header("admin", secrets["password"])
            async with http.get("/api/users", headers=basic) as resp:
                users = (await resp.json())["users"]
                assert [(u["name"], u["role"]) for u in users] == [("admin", "admin")]
    finally:
        await running.runner.cleanup()
    assert not (state / "auth.json").exists() and (state / "auth.json.v1").exists()
    assert json.loads((state / "users.json").read_text())["version"] == 2
    tokens = json.loads((state / "tokens.json").read_text())
    assert tokens["version"] == 2 and tokens["tokens"][0]["user"] == "admin"
    assert tokens["tokens"][0]["id"] == secrets["token_id"]


async def test_a_downgrade_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = AuthStore(state)
    store.ensure_admin()
    data = json.loads((state / "users.json").read_text())
    data["version"] = 3
    (state / "users.json").write_text(json.dumps(data))
    before = (state / "users.json").read_bytes()
    with pytest.raises(StateTooNew, match="newer ipkvm"):
        AuthStore(state)
    code, _, err = await cli("user", "list", "--state-dir", str(state))
    assert code != 0 and "format version 3" in err and "newer ipkvm" in err
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[server]\nstate_dir = "{state}"\nlisten = "127.0.0.1:0"\n')
    code, _, err = await cli("serve", "--config", str(cfg), "--target", "demo")
    assert code != 0 and "newer ipkvm" in err
    assert (state / "users.json").read_bytes() == before  # untouched


# --------------------------------------------------------------------------- CLI, concurrency


async def test_cli_user_commands(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    AuthStore(Path(state)).ensure_admin()
    code, _, err = await cli(
        "user",
        "add",
        "dave",
        "--role",
        "operator",
        "--ports",
        "1,2",
        "--password-stdin",
        "--state-dir",
        state,
        stdin=b"dave-pass-1\n",
    )
    assert code == 0, err
    code, _, err = await cli(
        "user", "add", "weak", "--password-stdin", "--state-dir", state, stdin=b"short\n"
    )
    assert code != 0 and "at least 8" in err
    code, _, err = await cli("user", "add", "eve", "--state-dir", state)  # no tty, no stdin flag
    assert code != 0 and "--password-stdin" in err
    code, out, _ = await cli("user", "list", "--state-dir", state)
    assert "dave" in out and "operator" in out and "ports=1,2" in out
    code, _, err = await cli("user", "role", "dave", "viewer", "--state-dir", state)
    assert code == 0, err
    code, _, err = await cli(
        "user", "passwd", "dave", "--password-stdin", "--state-dir", state, stdin=b"dave-pass-2\n"
    )
    assert code == 0, err
    store = AuthStore(Path(state))
    assert store.role_of("dave") == "viewer" and store.verify_password("dave", "dave-pass-2")
    code, _, err = await cli("user", "rm", "admin", "--state-dir", state)
    assert code != 0 and "last admin" in err
    code, _, err = await cli("user", "rm", "dave", "--state-dir", state)
    assert code == 0 and store.user_info("dave") is None
    code, token, err = await cli("token", "create", "watch", "--user", "admin", "--role",
                                 "viewer", "--state-dir", state)  # fmt: skip
    assert code == 0, err
    info = store.token_identity(token.strip())
    assert info is not None and (info.user, info.role) == ("admin", "viewer")
    code, out, _ = await cli("token", "list", "--state-dir", state)
    assert "watch" in out and "viewer" in out
    events = [json.loads(line)["event"] for line in (Path(state) / "audit.jsonl").open()]
    assert events == ["user.add", "user.change", "user.change", "user.remove", "token.create"]


async def test_concurrent_edits_from_cli_and_api_lose_nothing(server: Server) -> None:
    state = str(server.state_dir)

    async def via_cli(i: int) -> None:
        code, _, err = await cli(
            "user",
            "add",
            f"cli{i}",
            "--password-stdin",
            "--state-dir",
            state,
            stdin=f"cli-pass-{i}-x\n".encode(),
        )
        assert code == 0, err

    async def via_api(http: aiohttp.ClientSession, i: int) -> None:
        body = {"name": f"api{i}", "password": f"api-pass-{i}-x", "role": "operator"}
        async with http.post("/api/users", json=body) as resp:
            assert resp.status == 200, await resp.text()
        async with http.patch("/api/users/admin", json={"totp_required": False}) as resp:
            assert resp.status == 200

    # a session cookie: parallel first Basic checks would count as failures in flight (throttle)
    async with await server.login() as http:
        await asyncio.gather(*(via_cli(i) for i in range(4)), *(via_api(http, i) for i in range(4)))
        async with http.get("/api/users") as resp:
            names = {u["name"] for u in (await resp.json())["users"]}
    assert names == {"admin"} | {f"cli{i}" for i in range(4)} | {f"api{i}" for i in range(4)}


# --------------------------------------------------------------------------- WebSocket rights


async def test_websocket_obeys_the_role_and_exclusive_control(server: Server) -> None:
    store = server.app[AUTH_STORE]
    store.add_user("vic", "vic-pass-12", "viewer")
    store.add_user("ann", "ann-pass-12", "operator")
    store.add_user("ben", "ben-pass-12", "operator")

    async def events_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(5):
            while True:
                msg = await ws.receive_json()
                if msg["type"] == kind:
                    return msg  # type: ignore[no-any-return]

    key = {"type": "key", "code": "KeyA", "down": True}
    release = {"type": "release_all"}
    sessions = {}
    for user in ("vic", "ann", "ben"):
        jar = aiohttp.CookieJar(unsafe=True)
        sessions[user] = aiohttp.ClientSession(base_url=server.url, cookie_jar=jar)
        assert (await login(sessions[user], user, f"{user}-pass-12")).status == 200
    try:
        async with (
            sessions["vic"].ws_connect("/api/ws") as vic,
            sessions["ann"].ws_connect("/api/ws") as ann,
            sessions["ben"].ws_connect("/api/ws") as ben,
        ):
            await vic.send_json(key)
            err = await events_until(vic, "error")
            assert err["forbidden"] is True and err["permission"] == "input"
            assert "viewer" in err["message"]
            await vic.send_json(release)  # letting go is always allowed: no error
            await vic.send_json({"type": "ping", "t": 1})
            assert (await events_until(vic, "pong"))["t"] == 1
            await ann.send_json(key)
            presence = await events_until(ann, "presence")
            while not any(c["user"] == "ann" and c["typing"] for c in presence["clients"]):
                presence = await events_until(ann, "presence")
            await ann.send_json(release)
            async with sessions["ann"].post("/api/control", json={"action": "take"}) as r:
                assert r.status == 200
            await ben.send_json(key)
            err = await events_until(ben, "error")
            assert "ann has exclusive control" in err["message"]
            async with sessions["ben"].post("/api/control", json={"action": "take"}) as r:
                assert r.status == 409
            async with sessions["ben"].post(
                "/api/control", json={"action": "take", "force": True}
            ) as r:
                assert r.status == 403  # only admins take over
            async with sessions["ben"].post("/api/hid/release") as r:
                assert r.status == 403
            await ann.close()  # the holder leaves: control is released
            presence = await events_until(ben, "presence")
            while presence["holder"] is not None:
                presence = await events_until(ben, "presence")
            async with sessions["ben"].post("/api/hid/release") as r:
                assert r.status == 200
    finally:
        for s in sessions.values():
            await s.close()


async def test_an_admin_takes_over_control(server: Server) -> None:
    store = server.app[AUTH_STORE]
    store.add_user("ann", "ann-pass-12", "operator")
    ann = basic_header("ann", "ann-pass-12")
    async with aiohttp.ClientSession(base_url=server.url) as http:
        async with http.post("/api/control", json={"action": "take"}, headers=ann) as r:
            assert r.status == 200
        async with http.post("/api/hid/release", headers=server.basic()) as r:
            assert r.status == 403  # even an admin is a viewer until taking over
        async with http.post(
            "/api/control", json={"action": "take", "force": True}, headers=server.basic()
        ) as r:
            assert r.status == 200 and (await r.json())["holder"]["user"] == "admin"
        async with http.post("/api/hid/release", headers=ann) as r:
            assert r.status == 403
        async with http.post(
            "/api/control", json={"action": "release"}, headers=server.basic()
        ) as r:
            assert r.status == 200
        async with http.post("/api/hid/release", headers=ann) as r:
            assert r.status == 200


async def test_logout_releases_control_taken_without_a_console(server: Server) -> None:
    from appliance.api.control import CONTROL

    server.app[AUTH_STORE].add_user("ann", "ann-pass-12", "operator")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=server.url, cookie_jar=jar) as http:
        assert (await login(http, "ann", "ann-pass-12")).status == 200
        async with http.post("/api/control", json={"action": "take"}) as r:
            assert r.status == 200
        control = server.app[CONTROL]
        assert control.holder is not None and control.holder.user == "ann"
        released = asyncio.Event()
        unsubscribe = server.appliance.events.add(  # type: ignore[attr-defined]
            lambda e: released.set() if e.get("type") == "presence" and not e["holder"] else None
        )
        try:
            async with http.post("/api/auth/logout") as r:
                assert r.status == 200
            async with asyncio.timeout(5):
                await released.wait()
        finally:
            unsubscribe()
    async with aiohttp.ClientSession(base_url=server.url, headers=server.basic()) as http:
        async with http.post("/api/hid/release") as r:
            assert r.status == 200


def test_password_rules() -> None:
    from appliance.auth import check_password_rules

    for bad, why in (("short", "at least 8"), ("aaaaaaaaaa", "repeated"), ("Frank123", "user")):
        with pytest.raises(AuthError, match=why):
            check_password_rules(bad, "frank123")
    check_password_rules("correct horse", "frank")
