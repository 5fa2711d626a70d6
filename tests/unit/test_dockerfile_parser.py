"""The Dockerfile reader and word processing: directives, continuations, heredocs, forms, substitution,
.dockerignore rules and docker's parse errors (with the line)."""

from __future__ import annotations

import pytest

from dockyard.build.dockerfile import ParseError, parse
from dockyard.build.instructions import name_value_pairs, plan
from dockyard.build.shell_words import Lexer, ShellWordError
from dockyard.util.dockerignore import IgnoreMatcher


def test_directives_comments_and_continuations() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\n# a comment\nRUN echo a `\n"
               "  # comment inside\n\n  b\nCMD [\"sh\"]\n")
    assert df.escape == "`" and df.syntax == "docker/dockerfile:1"
    assert [n.cmd for n in df.nodes] == ["from", "run", "cmd"]
    run = df.nodes[1]
    assert run.args == "echo a   b" and run.line == 5
    assert df.nodes[2].exec_form == ["sh"]


def test_directive_only_at_top() -> None:
    df = parse("FROM busybox\n# escape=`\nRUN echo \\\n x\n")
    assert df.escape == "\\" and df.nodes[1].args == "echo  x"


def test_unknown_instruction_names_line() -> None:
    with pytest.raises(ParseError) as e:
        parse("FROM busybox\nRUN true\nfoo bar\n")
    assert str(e.value) == "dockerfile parse error on line 3: unknown instruction: FOO"


def test_bad_escape_directive() -> None:
    with pytest.raises(ParseError, match="invalid escape token"):
        parse("# escape=x\nFROM busybox\n")


def test_heredocs_several_on_one_line() -> None:
    df = parse("FROM busybox\nRUN <<A cat > /a && <<-B cat > /b\nline a\nA\n\tline b\n\tB\nCOPY <<\"EOF\" /f\n$X\nEOF\n")
    run = df.nodes[1]
    assert [h.name for h in run.heredocs] == ["A", "B"]
    assert run.heredocs[0].content == "line a\n" and run.heredocs[1].content == "line b\n"
    cp = df.nodes[2]
    assert cp.heredocs[0].content == "$X\n" and cp.heredocs[0].expand is False


def test_flags_and_exec_form() -> None:
    df = parse("FROM busybox\nCOPY --from=base --chown=1:2 [\"a b\", \"/dst/\"]\nRUN --mount=type=cache,target=/c ls\n")
    cp = df.nodes[1]
    assert cp.flags == ["from=base", "chown=1:2"] and cp.exec_form == ["a b", "/dst/"]
    assert df.nodes[2].flags == ["mount=type=cache,target=/c"] and df.nodes[2].args == "ls"


@pytest.mark.parametrize("text,message", [
    ("FROM\n", "FROM requires either one or three arguments"),
    ("FROM busybox\nCOPY onlyone\n", "COPY requires at least two arguments"),
    ("FROM busybox\nENV\n", "ENV requires at least one argument"),
    ("FROM busybox\nENV foo\n", "ENV must have two arguments"),
    # docker's parser keeps "WORKDIR a b" whole (one argument, as dockerd 20.10 records it): only none is refused
    ("FROM busybox\nWORKDIR\n", "WORKDIR requires exactly one argument"),
    ("FROM busybox\nCOPY --bogus=1 a b\n", "Unknown flag: bogus"),
    ("RUN true\n", "no build stage in current context"),
    ("FROM busybox\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD"),
    ("FROM busybox\nHEALTHCHECK FOO x\n", "Unknown type \"FOO\" in HEALTHCHECK"),
    ("FROM busybox AS a\nFROM busybox AS a\n", "duplicate name a"),
])
def test_instruction_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError) as e:
        plan(parse(text))
    assert message in str(e.value) and str(e.value).startswith("dockerfile parse error on line ")


def test_empty_dockerfile() -> None:
    with pytest.raises(ParseError, match=r"the Dockerfile \(Dockerfile\) cannot be empty"):
        plan(parse("# only a comment\n"))


def test_stages_and_meta_args() -> None:
    p = plan(parse("ARG V=1\nFROM busybox:${V} AS One\nRUN x\nFROM one\nCMD y\n"))
    assert [m.args for m in p.meta_args] == ["V=1"]
    assert [(s.base, s.name, len(s.nodes)) for s in p.stages] == [("busybox:${V}", "one", 1), ("one", "", 1)]


def test_env_pairs_keep_quotes_for_substitution() -> None:
    node = parse("FROM x\nENV A=1 B=\"two words\" C=three\\ four\n").nodes[1]
    assert name_value_pairs(node, "\\") == [("A", "1"), ("B", "\"two words\""), ("C", "three\\ four")]
    node = parse("FROM x\nENV legacy value with spaces\n").nodes[1]
    assert name_value_pairs(node, "\\") == [("legacy", "value with spaces")]


@pytest.mark.parametrize("word,expected", [
    ("$A", "a"), ("${A}b", "ab"), ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"), ("${EMPTY-dflt}", ""),
    ("${A:+alt}", "alt"), ("${UNSET:+alt}", ""), ("${EMPTY+alt}", "alt"), ("'$A'", "$A"), ("\"$A b\"", "a b"),
    ("\\$A", "$A"), ("\"\\$A\"", "$A"), ("${P#*/}", "b/c"), ("${P##*/}", "c"), ("${P%/*}", "a/b"),
    ("${P%%/*}", "a"), ("${P/b/x}", "a/x/c"), ("$", "$"), ("a$", "a$"), ("${A:-${B:-nested}}", "a"),
])
def test_substitution(word: str, expected: str) -> None:
    env = {"A": "a", "EMPTY": "", "P": "a/b/c"}
    assert Lexer().word(word, env) == expected


def test_substitution_errors_and_words() -> None:
    with pytest.raises(ShellWordError):
        Lexer().word("'open", {})
    with pytest.raises(ShellWordError, match="X: must be set"):
        Lexer().word("${X:?must be set}", {})
    assert Lexer().words("80 \"a b\" $P", {"P": "443/tcp"}) == ["80", "a b", "443/tcp"]
    assert Lexer("`").word("a`$b", {"b": "x"}) == "a$b"


@pytest.mark.parametrize("patterns,path,excluded", [
    (["*.log"], "a.log", True), (["*.log"], "dir/a.log", False), (["**/*.log"], "dir/a.log", True),
    (["dir"], "dir/sub/file", True), (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/other", True), (["/abs"], "abs", True), (["a?c"], "abc", True),
    (["**"], "anything/at/all", True), (["**", "!Dockerfile"], "Dockerfile", False),
    (["node_modules/"], "node_modules/x", True), (["./x"], "x", True),
])
def test_dockerignore(patterns: list[str], path: str, excluded: bool) -> None:
    assert IgnoreMatcher(patterns).excluded(path) is excluded


def test_daemon_json_builder_gc(tmp_path: object) -> None:
    import json
    import os

    from dockyard.daemon.config import load

    path = os.path.join(str(tmp_path), "daemon.json")
    with open(path, "w") as f:
        json.dump({"builder": {"gc": {"enabled": False, "defaultKeepStorage": "2GB"}}}, f)
    cfg = load(["--config-file", path])
    assert cfg.builder_gc is False and cfg.builder_keep_storage == 2_000_000_000
    assert load([]).builder_keep_storage == 20_000_000_000


@pytest.mark.parametrize("raw,expected", [(None, False), ("", False), ("0", False), ("False", False),
                                          ("false", False), ("no", False), ("None", False), ("1", True),
                                          ("True", True), ("yes", True)])
def test_build_query_booleans_as_dockerd_reads_them(raw: str | None, expected: bool) -> None:
    from dockyard.api.routes.build import _bool_value

    assert _bool_value(raw) is expected  # docker-py sends pull=False, compose rm=True
