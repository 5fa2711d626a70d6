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


@pytest.mark.parametrize("cli", list(CLIS))
def test_run_it_echo_and_exit_code(d: TestDaemon, cli: str) -> None:
    child = _spawn(d, cli, "run", "-it", "--rm", "busybox", "sh")
    try:
        child.expect(r"[#$] ")
        child.sendline("echo hi$((40+2))")
        child.expect("hi42")
        child.sendline("stty size")
        child.expect("30 100")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5


@pytest.mark.parametrize("cli", list(CLIS))
def test_detach_with_ctrl_p_ctrl_q_then_attach(d: TestDaemon, cli: str) -> None:
    name = f"det-{cli}"
    child = _spawn(d, cli, "run", "-it", "--name", name, "busybox", "sh")
    try:
        child.expect(r"[#$] ")
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    try:
        assert d.cli("inspect", "-f", "{{.State.Running}}", name).stdout == "true\n"
        again = _spawn(d, cli, "attach", name)
        try:
            # attach nudges the TTY size so the shell redraws its prompt, but that redraw may come before the
            # stream is connected: an empty line asks for a prompt as a person would
            again.sendline("")
            again.expect(r"[#$] ")
            again.sendline("echo back$((1+1))")
            again.expect("back2")
            again.send("\x10\x11")
            again.expect("read escape sequence")
            again.expect(pexpect.EOF)
        finally:
            again.close()
        assert again.exitstatus == 1
        last = _spawn(d, cli, "attach", name)
        try:
            last.sendline("")
            last.expect(r"[#$] ")
            last.sendline("echo last$((1+2))")
            last.expect("last3")
            last.sendline("exit 7")
            last.expect(pexpect.EOF)
        finally:
            last.close()
        assert last.exitstatus == 7
        wait_for(lambda: d.cli("inspect", "-f", "{{.State.Running}}", name).stdout == "false\n")
    finally:
        d.cli("rm", "-f", name)


@pytest.mark.parametrize("cli", list(CLIS))
def test_exec_it(d: TestDaemon, cli: str) -> None:
    name = f"xit-{cli}"
    assert d.cli("run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
    try:
        child = _spawn(d, cli, "exec", "-it", name, "sh")
        try:
            child.expect(r"[#$] ")
            child.sendline("tty; exit 9")
            child.expect("/dev/pts/")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        assert child.exitstatus == 9
    finally:
        d.cli("rm", "-f", name)
