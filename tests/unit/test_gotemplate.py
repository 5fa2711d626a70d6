"""The Go text/template subset used by --format, checked against what Go/docker print."""

from __future__ import annotations

import pytest

from dockyard.util.gotemplate import Template, TemplateError, prepare_format, render

DATA = {
    "Id": "abc123",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 42, "ExitCode": 0, "Health": None},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}, "Cmd": ["sh", "-c", "x"]},
    "Mounts": [],
    "Count": 3,
}


class Row:
    ID = "abc"

    def Label(self, key: str) -> str:  # noqa: N802 - docker's template method name
        return {"x": "1"}.get(key, "")


@pytest.mark.parametrize("tpl,want", [
    ("{{.Id}}", "abc123"),
    ("{{.State.Status}}", "running"),
    ("{{.State.Pid}}", "42"),
    ("{{.State.Running}}", "true"),
    ("{{.Missing}}", "<no value>"),
    ("{{.State.Health}}", "<nil>"),
    ("{{json .Config.Cmd}}", '["sh","-c","x"]'),
    ("{{json .Mounts}}", "[]"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{range .Config.Env}}{{.}};{{end}}", "A=1;B=2;"),
    ("{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}", "0=A=1 1=B=2 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}},{{end}}", "a:1,b:2,"),
    ("{{range .Mounts}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if eq .State.Status \"exited\"}}e{{else if eq .State.Status \"running\"}}r{{else}}o{{end}}", "r"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ("{{with .Nope}}x{{else}}y{{end}}", "y"),
    ("{{.Name | upper}}", "/WEB"),
    ("{{lower \"ABC\"}}", "abc"),
    ("{{title \"hello world\"}}", "Hello World"),
    ("{{join .Config.Env \",\"}}", "A=1,B=2"),
    ("{{index .Config.Labels \"a\"}}", "1"),
    ("{{index .Config.Env 1}}", "B=2"),
    ("{{len .Config.Env}}", "2"),
    ("{{split \"a:b\" \":\"}}", "[a b]"),
    ("{{printf \"%s-%d\" .Id .Count}}", "abc123-3"),
    ("{{printf \"%-6s|\" \"ab\"}}", "ab    |"),
    ("{{println .Id}}", "abc123\n"),
    ("{{pad .Id 1 2}}", " abc123  "),
    ("{{truncate .Id 3}}", "abc"),
    ("{{if and .State.Running (gt .Count 2)}}yes{{end}}", "yes"),
    ("{{if or (not .State.Running) (lt .Count 1)}}yes{{else}}no{{end}}", "no"),
    ("{{if ne .Count 3}}a{{else}}b{{end}}", "b"),
    ("a  {{- .Id -}}  b", "aabc123b"),
    ("{{$n := .Name}}{{$n}}", "/web"),
    ("{{/* comment */}}x", "x"),
    ("{{json .State}}", '{"Status":"running","Running":true,"Pid":42,"ExitCode":0,"Health":null}'),
])
def test_render(tpl: str, want: str) -> None:
    assert render(tpl, DATA) == want


def test_methods_with_arguments() -> None:
    assert render('{{.ID}} {{.Label "x"}}', Row()) == "abc 1"


def test_json_of_dot() -> None:
    assert render("{{json .}}", {"a": [1, 2]}) == '{"a":[1,2]}'


@pytest.mark.parametrize("bad", ["{{.Id", "{{end}}", "{{if .X}}", "{{nofunc .X}}"])
def test_errors(bad: str) -> None:
    with pytest.raises(TemplateError):
        Template(bad).execute(DATA)


def test_table_prefix() -> None:
    assert prepare_format("table {{.ID}}\\t{{.Names}}") == (True, "{{.ID}}\t{{.Names}}")
    assert prepare_format("{{.ID}}") == (False, "{{.ID}}")


def test_parenthesized_pipelines_and_chains() -> None:
    """docker users' `{{(index .NetworkSettings.Networks "net").IPAddress}}` crashed the CLI before."""
    from dockyard.util.gotemplate import Template

    data = {"N": {"net": {"IPAddress": "10.0.0.2"}}, "P": {"80/tcp": [{"HostPort": "8080"}]}}
    assert Template('{{(index .N "net").IPAddress}}').execute(data) == "10.0.0.2"
    assert Template('{{(index (index .P "80/tcp") 0).HostPort}}').execute(data) == "8080"
    assert Template('{{printf "%s!" (index .N "net").IPAddress}}').execute(data) == "10.0.0.2!"


def test_unknown_function_fails_at_parse_and_nothing_is_a_traceback() -> None:
    import pytest

    from dockyard.util.gotemplate import Template, TemplateError

    with pytest.raises(TemplateError, match='function "nosuch" not defined'):
        Template("{{if .A}}{{nosuch .B}}{{end}}")
    with pytest.raises(TemplateError):
        Template("{{index .A 5}}").execute({"A": [1]})
