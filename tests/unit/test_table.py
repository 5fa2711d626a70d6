"""docker's tabwriter alignment: minwidth 10, 3-space gutters, last column unpadded."""

from __future__ import annotations

from dockyard.cli.commands.ps import ContainerRow, display_ports
from dockyard.cli.format.output import render_list
from dockyard.cli.format.table import align, ellipsis, render, truncate_id


def test_align_like_docker() -> None:
    out = render(["CONTAINER ID", "IMAGE", "NAMES"], [["0123456789ab", "busybox", "web"]])
    assert out == ("CONTAINER ID   IMAGE     NAMES\n"
                   "0123456789ab   busybox   web\n")


def test_min_width_and_empty_cells() -> None:
    assert align(["a\tb\tc", "\t\tz"]) == "a         b         c\n                    z\n"


def test_wide_min_width_for_top() -> None:
    assert align(["UID\tPID", "root\t1"], minwidth=20) == "UID                 PID\nroot                1\n"


def test_truncation() -> None:
    assert truncate_id("sha256:" + "a" * 64) == "a" * 12
    assert truncate_id("b" * 64, no_trunc=True) == "b" * 64
    assert ellipsis("sh -c 'while true; do sleep 1; done'", 20) == "sh -c 'while true; …"


def test_ports_display() -> None:
    ports = [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"PrivatePort": 53, "Type": "udp"},
             {"IP": "0.0.0.0", "PrivatePort": 81, "PublicPort": 8081, "Type": "tcp"}]
    assert display_ports(ports) == "0.0.0.0:8080-8081->80-81/tcp, [::]:8080->80/tcp, 53/udp"


def test_ps_table_and_custom_format() -> None:
    c = {"Id": "f" * 64, "Names": ["/web"], "Image": "busybox", "Command": "sleep 100", "Created": 1000,
         "Status": "Up 3 seconds", "State": "running", "Ports": [], "Labels": {"a": "b"}}
    row = ContainerRow(c, now=1010)
    table = render_list("", [row], {"ID": "CONTAINER ID", "Names": "NAMES"}, "table {{.ID}}\t{{.Names}}")
    assert table == "CONTAINER ID   NAMES\nffffffffffff   web\n"
    assert render_list('{{.Names}}:{{.Label "a"}}:{{.RunningFor}}', [row], {}, "") == "web:b:10 seconds ago\n"
    assert render_list("{{.Command}}", [row], {}, "") == '"sleep 100"\n'
