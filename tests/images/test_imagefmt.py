"""The image commands' output helpers: go-units sizes and durations, tables, the template subset."""

from __future__ import annotations

import io

from dockyard.cli.commands._imagefmt import go_json, human_duration, human_size, render_template, write_table


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
    out = io.StringIO()
    write_table(out, ["REPOSITORY", "TAG", "SIZE"], [["busybox", "latest", "1.98MB"]])
    assert out.getvalue() == "REPOSITORY   TAG       SIZE\nbusybox      latest    1.98MB\n"


def test_templates() -> None:
    rows = [{"Repository": "busybox", "Tag": "<none>", "Labels": {"b": "2", "a": "1"}}]
    assert list(render_template("{{.Repository}}:{{.Tag}}", rows, {})) == ["busybox:<none>"]
    assert list(render_template("{{json .Tag}}", rows, {})) == ['"\\u003cnone\\u003e"']
    assert list(render_template("{{.Labels}}", rows, {})) == ["map[a:1 b:2]"]
    assert list(render_template("table {{.Repository}}", rows, {"Repository": "REPOSITORY"})) == [
        "REPOSITORY", "busybox"]
    assert go_json({"b": 1, "a": "<&>"}) == '{"a":"\\u003c\\u0026\\u003e","b":1}'
