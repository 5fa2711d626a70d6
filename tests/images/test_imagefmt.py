"""The image commands' output helpers: go-units sizes and durations, tables, templates, typed inspect structs."""

from __future__ import annotations

from dockyard.cli.format.gostruct import typed_inspect
from dockyard.cli.format.output import Row, go_time_string, render_each, render_list
from dockyard.util.gotemplate import render
from dockyard.util.humanize import human_duration, human_size


def test_human_size_matches_go_units() -> None:
    assert human_size(0) == "0B"
    assert human_size(999) == "999B"
    assert human_size(1982357) == "1.98MB"
    assert human_size(1982357, 4) == "1.982MB"
    assert human_size(77_900_000) == "77.9MB"
    assert human_size(1_200_000_000) == "1.2GB"


def test_human_duration_matches_go_units() -> None:
    assert human_duration(0.3) == "Less than a second"
    assert human_duration(1) == "1 second"
    assert human_duration(45) == "45 seconds"
    assert human_duration(61) == "About a minute"
    assert human_duration(60 * 59) == "59 minutes"
    assert human_duration(3600) == "About an hour"
    assert human_duration(3600 * 47) == "47 hours"
    assert human_duration(86400 * 3) == "3 days"
    assert human_duration(86400 * 20) == "2 weeks"
    assert human_duration(86400 * 90) == "3 months"
    assert human_duration(86400 * 800) == "2 years"


def test_table_layout_like_tabwriter() -> None:
    rows = [Row({"Repository": "busybox", "Tag": "latest", "Size": "1.98MB"})]
    out = render_list("", rows, {"Repository": "REPOSITORY", "Tag": "TAG", "Size": "SIZE"},
                      "table {{.Repository}}\t{{.Tag}}\t{{.Size}}")
    assert out == "REPOSITORY   TAG       SIZE\nbusybox      latest    1.98MB\n"


def test_templates() -> None:
    rows = [Row({"Repository": "busybox", "Tag": "<none>", "Labels": {"b": "2", "a": "1"}})]
    headers = {"Repository": "REPOSITORY"}
    assert render_list("{{.Repository}}:{{.Tag}}", rows, headers, "") == "busybox:<none>\n"
    assert render_list("{{.Labels}}", rows, headers, "") == "map[a:1 b:2]\n"
    assert render_list("table {{.Repository}}", rows, headers, "") == "REPOSITORY\nbusybox\n"
    assert render_list("json", rows, headers, "") == (
        '{"Labels":{"a":"1","b":"2"},"Repository":"busybox","Tag":"\\u003cnone\\u003e"}\n')


def test_inspect_structs_print_like_go() -> None:
    net = {"Name": "n", "IPAM": {"Driver": "default", "Options": None,
                                 "Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}]}}
    typed = typed_inspect("network", net)
    assert render_each("{{.IPAM.Config}}", [typed]) == "[{10.1.0.0/24  10.1.0.1 map[]}]\n"
    assert render_each("{{.IPAM}}", [typed]) == "{default map[] [{10.1.0.0/24  10.1.0.1 map[]}]}\n"
    assert render_each("{{json .IPAM.Config}}", [typed]) == '[{"Subnet":"10.1.0.0/24","Gateway":"10.1.0.1"}]\n'
    image = typed_inspect("image", {"RootFS": {"Type": "layers", "Layers": ["sha256:ab"]}})
    assert render("{{.RootFS}}", image) == "{layers [sha256:ab]}"


def test_go_time_string() -> None:
    assert go_time_string("2026-11-24T11:10:39.092986500Z") == "2026-11-24 11:10:39.0929865 +0000 UTC"
    assert go_time_string("2026-11-24T11:10:39Z") == "2026-11-24 11:10:39 +0000 UTC"
