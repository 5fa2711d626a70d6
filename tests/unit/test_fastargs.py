"""The argparse-free reading of run/create/exec flags gives argparse's Namespace, or leaves the case to argparse."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from dockyard.cli.app import _bool_values, _load, make_parser
from dockyard.cli.fastargs import parse
from dockyard.util import cjson

# argv the fast reader must parse itself, exactly as argparse does
ACCEPTED: list[tuple[str, list[str]]] = [
    ("run", ["--rm", "busybox", "true"]),
    ("run", ["busybox"]),
    ("run", ["-it", "busybox", "sh"]),
    ("run", ["-d", "--name", "web", "-p", "8080:80", "-e", "A=1", "-e", "B=two words", "nginx"]),
    ("run", ["--name=web", "--memory", "512m", "--cpu-shares", "512", "--pids-limit=100", "busybox"]),
    ("run", ["--pull", "never", "--network", "none", "--net", "bridge", "busybox", "ls", "-la", "--rm"]),
    ("run", ["-h", "myhost", "-w", "/tmp", "-u", "nobody", "busybox", "sh", "-c", "echo hi; ls"]),
    ("run", ["--entrypoint", "", "-l", "x=y", "--init", "--stop-timeout", "5", "busybox", "x"]),
    ("run", ["-v", "/tmp:/data:ro", "--mount", "type=tmpfs,target=/t", "busybox", "-"]),
    ("run", ["-i", "-t", "--detach-keys", "ctrl-x", "-a", "stdout", "busybox"]),
    ("create", ["--rm", "--restart", "no", "busybox", "true"]),
    ("create", ["-P", "-q", "--read-only", "--privileged", "busybox"]),
    ("exec", ["-it", "box", "sh"]),
    ("exec", ["-e", "A=1", "-w", "/", "-u", "0", "box", "ls", "-l"]),
    ("exec", ["box"]),
    ("ps", []),
    ("ps", ["-a"]),
    ("ps", ["-aq", "--no-trunc", "-s"]),
    ("ps", ["-a", "--filter", "status=exited", "-f", "label=x", "--format", "{{.ID}} {{.Names}}"]),
    ("ps", ["-n", "3", "--format=table {{.ID}}"]),
]

# argv with a case argparse must decide (help, errors, quirks): the fast reader says None
DEFERRED: list[tuple[str, list[str]]] = [
    ("run", ["--help"]),
    ("run", []),
    ("run", ["--rm"]),
    ("run", ["--no-such-flag", "busybox"]),
    ("run", ["--rm=false", "busybox"]),
    ("run", ["-d=true", "busybox"]),
    ("run", ["-e=A=1", "busybox"]),
    ("run", ["-eA=1", "busybox"]),
    ("run", ["-ie", "A=1", "busybox"]),
    ("run", ["--name", "-x", "busybox"]),
    ("run", ["--pull", "sometimes", "busybox"]),
    ("run", ["--cpu-shares", "many", "busybox"]),
    ("run", ["--sig-proxy", "busybox"]),
    ("run", ["--", "busybox"]),
    ("run", ["--rm", "busybox", "--", "x"]),
    ("run", ["-1", "busybox"]),
    ("run", ["--name"]),
    ("exec", ["-h", "box"]),
    ("ps", ["stray"]),
    ("ps", ["-n", "-1"]),
    ("ps", ["-n", "three"]),
    ("ps", ["--help"]),
]


def _argparse_ns(command: str, argv: list[str]) -> argparse.Namespace:
    p = make_parser(command)
    return p.parse_args(_bool_values(p, argv))


@pytest.mark.parametrize(("command", "argv"), ACCEPTED, ids=[" ".join([c, *a]) for c, a in ACCEPTED])
def test_fast_reader_agrees_with_argparse(command: str, argv: list[str]) -> None:
    configure, _ = _load(command)
    ns = parse(configure, argv)
    assert ns is not None
    assert vars(ns) == vars(_argparse_ns(command, argv))


@pytest.mark.parametrize(("command", "argv"), DEFERRED, ids=[" ".join([c, *a]) for c, a in DEFERRED])
def test_fast_reader_leaves_the_rest_to_argparse(command: str, argv: list[str]) -> None:
    configure, _ = _load(command)
    assert parse(configure, argv) is None


def test_commands_with_other_positionals_are_left_to_argparse() -> None:
    configure, _ = _load("logs")
    assert parse(configure, ["-f", "box"]) is None


@pytest.mark.parametrize("argv", [["run", "--rm", "--name", "x", "busybox", "true"], ["ps", "-a"]])
def test_run_and_ps_import_neither_argparse_nor_json(argv: list[str]) -> None:
    """The point of the fast reader: `run --rm busybox true` and `ps` start without argparse, json, re or enum."""
    code = ("import sys\nfrom dockyard.cli.main import main\n"
            f"main({argv!r})\n"
            "print(' '.join(m for m in ('argparse', 're', 'json', 'enum', 'signal') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"DOCKYARD_HOST": "unix:///nonexistent/dockyard.sock", "PATH": "/usr/bin:/bin"})
    assert "Cannot connect to the dockyard daemon" in r.stderr
    assert r.stdout.strip() == ""


def test_flag_errors_still_read_as_argparse_wrote_them() -> None:
    r = subprocess.run([sys.executable, "-m", "dockyard.cli.main", "run", "--pull", "sometimes", "busybox"],
                       capture_output=True, text=True)
    assert r.returncode == 125
    assert r.stderr.startswith("dockyard run: argument --pull: invalid choice: 'sometimes'")


VALUES = [None, True, False, 0, -5, 2**70, 1.5, float("inf"), "", "héllo \"q\" \\ \n\t\u2603\U0001f600",
          [], {}, [1, "a", None, {"b": [True, 2.25]}], {"Id": "ab" * 32, "Warnings": []},
          {"HostConfig": {"Binds": None, "ConsoleSize": [0, 0]}, "Cmd": ["true"], "Labels": {}}]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:30] for v in VALUES])
def test_cjson_is_json(value: object) -> None:
    assert cjson.dumps(value) == json.dumps(value)
    assert cjson.dumps(value, separators=(",", ":")) == json.dumps(value, separators=(",", ":"))
    text = json.dumps(value)
    for data in (text, text.encode(), f" \n{text}\r\n ".encode(), text.encode("utf-16")):
        assert cjson.loads(data) == json.loads(data)


def test_cjson_errors_are_json_errors() -> None:
    for bad in ("", "{", "[1,]", '{"a": 1} x', "\ufeff{}", b"\xff\xfe{", "nul"):
        with pytest.raises(ValueError) as ours:
            cjson.loads(bad)
        with pytest.raises(ValueError) as theirs:
            json.loads(bad)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        cjson.dumps({"a": {1}})
