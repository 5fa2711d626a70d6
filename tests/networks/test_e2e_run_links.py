"""``run --link`` on a user-defined network and ``run --link-local-ip``, through both CLIs against one daemon.

On a user network docker's ``--link name:alias`` is an endpoint option: the CLI sends it as
``EndpointsConfig[net].Links`` and the embedded DNS answers ``alias`` with the target's address, for the
linking container only; no legacy link variables and no /etc/hosts line (those are the default bridge's).
``--link-local-ip`` goes to the first network's ``IPAMConfig.LinkLocalIPs`` and is on the interface.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers.daemon import TestDaemon

pytestmark = pytest.mark.usefixtures("clean_after")


def ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, f"{p.args}: {p.stdout}{p.stderr}"
    return p.stdout


@pytest.mark.parametrize("cli", ["docker", "dockyard"])
def test_run_link_on_a_user_network_is_a_dns_alias(d: TestDaemon, cli: str) -> None:
    run = d.docker if cli == "docker" else d.cli
    ok(run("network", "create", f"ln-{cli}"))
    ok(run("run", "-d", "--name", f"tgt-{cli}", "--network", f"ln-{cli}", "busybox", "sleep", "300"))
    ip = json.loads(ok(run("inspect", f"tgt-{cli}")))[0]["NetworkSettings"]["Networks"][f"ln-{cli}"]["IPAddress"]
    ok(run("run", "-d", "--name", f"lnk-{cli}", "--network", f"ln-{cli}", "--link", f"tgt-{cli}:db", "busybox",
           "sleep", "300"))
    ep = json.loads(ok(run("inspect", f"lnk-{cli}")))[0]["NetworkSettings"]["Networks"][f"ln-{cli}"]
    assert ep["Links"] == [f"tgt-{cli}:db"]
    assert ip in ok(run("exec", f"lnk-{cli}", "nslookup", "db"))
    env = ok(run("exec", f"lnk-{cli}", "env"))
    assert "DB_NAME=" not in env  # link variables are the default bridge's only
    assert "\tdb" not in ok(run("exec", f"lnk-{cli}", "cat", "/etc/hosts"))
    # the alias is the linking container's own
    ok(run("run", "-d", "--name", f"oth-{cli}", "--network", f"ln-{cli}", "busybox", "sleep", "300"))
    assert run("exec", f"oth-{cli}", "nslookup", "db").returncode != 0


@pytest.mark.parametrize("cli", ["docker", "dockyard"])
def test_run_link_local_ip(d: TestDaemon, cli: str) -> None:
    run = d.docker if cli == "docker" else d.cli
    ok(run("network", "create", f"ll-{cli}"))
    ok(run("run", "-d", "--name", f"ll-{cli}", "--network", f"ll-{cli}", "--link-local-ip", "169.254.7.7",
           "busybox", "sleep", "300"))
    ep = json.loads(ok(run("inspect", f"ll-{cli}")))[0]["NetworkSettings"]["Networks"][f"ll-{cli}"]
    assert ep["IPAMConfig"]["LinkLocalIPs"] == ["169.254.7.7"]
    assert "inet 169.254.7.7/16" in ok(run("exec", f"ll-{cli}", "ip", "addr", "show", "eth0"))
    p = run("run", "-d", "--name", f"bad-{cli}", "--network", f"ll-{cli}", "--link-local-ip", "10.9.9.9",
            "busybox", "sleep", "300")
    # dockerd 20.10 says "link local"; the newer words are "link-local"
    word = "link local" if d.reference else "link-local"
    assert p.returncode == 125 and f"invalid {word} IP address: 10.9.9.9" in p.stderr
