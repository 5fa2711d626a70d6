"""`run -it` / `exec -it` / `attach` through a real pseudo-terminal: echo, exit codes, ctrl-p ctrl-q detach."""

from __future__ import annotations

import pexpect
import pytest

from helpers.daemon import DOCKER, DOCKYARD, TestDaemon, wait_for

CLIS = {"dockyard": DOCKYARD, "docker": DOCKER}


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> TestDaemon:
    return daemon


def _spawn(d: TestDaemon, cli: str, *args: str) -> pexpect.spawn:
    child = pexpect.spawn(CLIS[cli], list(args), env=d.env, timeout=20, encoding="utf-8", dimensions=(30, 100))
    return child


def _converse(d: TestDaemon, cli: str, args: list[str], steps: list[tuple[str, str]]) -> int | None:
    """Run the CLI on a pseudo-terminal, play ``steps`` ("send" / "sendline" / "expect", text), wait for it
    to end; its exit status."""
    child = _spawn(d, cli, *args)
    try:
        for action, text in steps:
            getattr(child, action)(text)
        child.expect(pexpect.EOF)
    finally:
        child.close()
    return child.exitstatus


@pytest.mark.parametrize("cli", list(CLIS))
def test_run_it_echo_and_exit_code(d: TestDaemon, cli: str) -> None:
    status = _converse(d, cli, ["run", "-it", "--rm", "busybox", "sh"], [
        ("expect", r"[#$] "), ("sendline", "echo hi$((40+2))"), ("expect", "hi42"),
        ("sendline", "stty size"), ("expect", "30 100"), ("sendline", "exit 5")])
    assert status == 5


@pytest.mark.parametrize("cli", list(CLIS))
def test_detach_with_ctrl_p_ctrl_q_then_attach(d: TestDaemon, cli: str) -> None:
    name = f"det-{cli}"
    status = _converse(d, cli, ["run", "-it", "--name", name, "busybox", "sh"],
                       [("expect", r"[#$] "), ("send", "\x10\x11")])
    assert status == 0
    try:
        assert d.cli("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
        # attach nudges the TTY size so the shell redraws its prompt, but that redraw may come before the
        # stream is connected: an empty line asks for a prompt as a person would
        status = _converse(d, cli, ["attach", name], [
            ("sendline", ""), ("expect", r"[#$] "), ("sendline", "echo back$((1+1))"), ("expect", "back2"),
            ("send", "\x10\x11"), ("expect", "read escape sequence")])
        assert status == 1
        status = _converse(d, cli, ["attach", name], [
            ("sendline", ""), ("expect", r"[#$] "), ("sendline", "echo last$((1+2))"), ("expect", "last3"),
            ("sendline", "exit 7")])
        assert status == 7
        wait_for(lambda: d.cli("inspect", "-f", "{{.State.Running}}", name).stdout == "false\n")
    finally:
        d.cli("rm", "-f", name)


@pytest.mark.parametrize("cli", list(CLIS))
def test_exec_it(d: TestDaemon, cli: str) -> None:
    name = f"xit-{cli}"
    assert d.cli("run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
    try:
        status = _converse(d, cli, ["exec", "-it", name, "sh"],
                           [("expect", r"[#$] "), ("sendline", "tty; exit 9"), ("expect", "/dev/pts/")])
        assert status == 9
    finally:
        d.cli("rm", "-f", name)
