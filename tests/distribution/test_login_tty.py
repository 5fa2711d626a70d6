"""`login` on a terminal, driven through a pty: docker-cli's prompts (username, then the password with echo
off), its stored-credentials attempt first, and its messages. The same script runs against the docker CLI and
the dockyard CLI, and the two transcripts must be the same bytes (the config path aside)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from helpers.daemon import DOCKER, TestDaemon
from helpers.registry import Registry, running_registry

DOCKYARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv", "bin", "dockyard")
PASSWORD = "s3cret-builder"
CLIS = {"docker": DOCKER, "dockyard": DOCKYARD}


@pytest.fixture(scope="module")
def basic(reg_tmp: str) -> Iterator[Registry]:
    with running_registry(reg_tmp, "basic", users={"bob": PASSWORD}) as reg:
        yield reg


def _spawn(cli: str, args: list[str], env: dict[str, str]) -> object:
    import pexpect

    return pexpect.spawn(CLIS[cli], args, env=env, timeout=60)


def _login(cli: str, env: dict[str, str], args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Answer each prompt in turn; at a password prompt the terminal must have echo off. Returns (exit, transcript)."""
    import pexpect

    child = _spawn(cli, ["login", *args], env)
    out = b""
    for prompt, answer in answers:
        child.expect_exact([prompt])  # type: ignore[attr-defined]
        out += child.before + child.after  # type: ignore[attr-defined]
        if prompt == "Password: ":
            assert child.waitnoecho(10), f"{cli}: the password prompt left echo on"  # type: ignore[attr-defined]
        child.sendline(answer)  # type: ignore[attr-defined]
    child.expect(pexpect.EOF)  # type: ignore[attr-defined]
    out += child.before  # type: ignore[attr-defined]
    child.close()  # type: ignore[attr-defined]
    return child.exitstatus, out.decode()  # type: ignore[attr-defined]


def _config(env: dict[str, str]) -> dict[str, object]:
    try:
        with open(os.path.join(env["DOCKER_CONFIG"], "config.json")) as f:
            return dict(json.load(f))
    except FileNotFoundError:
        return {}


def _script(cli: str, daemon: TestDaemon, basic: Registry, tmp: str) -> list[str]:
    env = dict(daemon.env)
    env["DOCKER_CONFIG"] = os.path.join(tmp, f"tty-{cli}")
    cfg_path = os.path.join(env["DOCKER_CONFIG"], "config.json")
    host = basic.host
    transcripts = []

    # a wrong password: docker's error, nothing stored
    code, out = _login(cli, env, [host], [("Username: ", "bob"), ("Password: ", "wrong")])
    assert code == 1 and "failed with status: 401 Unauthorized" in out, out
    assert "wrong" not in out and _config(env).get("auths", {}) == {}
    transcripts.append(out)

    # the right one: stored as docker stores it, the warning names the file
    code, out = _login(cli, env, [host], [("Username: ", "bob"), ("Password: ", PASSWORD)])
    assert code == 0 and out.endswith("Login Succeeded\r\n"), out
    assert PASSWORD not in out
    assert f"WARNING! Your credentials are stored unencrypted in '{cfg_path}'." in out
    want = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    assert _config(env)["auths"] == {host: {"auth": want}}
    transcripts.append(out)

    # stored credentials are tried first: no prompt at all
    child = _spawn(cli, ["login", host], env)
    import pexpect

    child.expect(pexpect.EOF)  # type: ignore[attr-defined]
    child.close()  # type: ignore[attr-defined]
    out = child.before.decode()  # type: ignore[attr-defined]
    assert child.exitstatus == 0, out  # type: ignore[attr-defined]
    assert out.startswith("Authenticating with existing credentials... [Username: bob]\r\n"), out
    assert "To login with a different account, run 'docker logout' followed by 'docker login'" in out
    assert "Username" not in out.split("]", 1)[1] and "Password" not in out
    transcripts.append(out)

    # stale stored credentials: refused, then the prompt offers the stored name (Enter keeps it)
    cfg = _config(env)
    cfg["auths"] = {host: {"auth": base64.b64encode(b"bob:stale").decode()}}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    code, out = _login(cli, env, [host], [("Username (bob): ", ""), ("Password: ", PASSWORD)])
    assert code == 0 and "Stored credentials invalid or expired\r\n" in out, out
    assert _config(env)["auths"] == {host: {"auth": want}}
    transcripts.append(out)

    # -u given: only the password is asked for; an empty one is docker's error
    code, out = _login(cli, env, ["-u", "bob", host], [("Password: ", "")])
    assert code == 1 and "Error: Password Required" in out, out
    transcripts.append(out)
    return [t.replace(cfg_path, "<config>") for t in transcripts]


def test_login_prompts_on_a_terminal_as_docker_cli_does(daemon: TestDaemon, basic: Registry, reg_tmp: str) -> None:
    mine = _script("dockyard", daemon, basic, reg_tmp)
    theirs = _script("docker", daemon, basic, reg_tmp)
    assert mine == theirs


def test_login_without_a_terminal_refuses_to_prompt(daemon: TestDaemon, basic: Registry, reg_tmp: str) -> None:
    env = dict(daemon.env)
    env["DOCKER_CONFIG"] = os.path.join(reg_tmp, "notty")
    for cli in CLIS.values():
        for args in ([basic.host], ["-u", "bob", basic.host]):
            r = subprocess.run([cli, "login", *args], env=env, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=60)
            assert r.returncode == 1, (cli, r.stderr)
            assert r.stderr == "Error: Cannot perform an interactive login from a non TTY device\n", (cli, r.stderr)
        r = subprocess.run([cli, "login", "-u", "bob", "-p", "x", "--password-stdin", basic.host], env=env,
                           capture_output=True, text=True, input="y\n", timeout=60)
        assert r.returncode == 1
        assert r.stderr == "conflicting options: cannot specify both --password and --password-stdin\n", r.stderr
    assert not os.path.exists(os.path.join(env["DOCKER_CONFIG"], "config.json"))
