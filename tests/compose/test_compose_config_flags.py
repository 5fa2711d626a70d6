"""`compose config`'s other Compose v2 flags: --variables, --environment, --no-consistency."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dockyard.compose.variables import extract_variables
from helpers.compose_run import run_compose as run


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "TAG", "PORT", "REQ", "ALT", "INNER"):
        monkeypatch.delenv(var, raising=False)


def test_variables_table(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          web:
            image: "busybox:${TAG:-latest}"
            command: ["echo", "$$NOT_A_VAR", "${REQ:?set it}", "$PLAIN"]
            ports: ["${PORT-8080}:80"]
            labels:
              alt: ${ALT:+on}
              nested: ${OUTER:-${INNER1}}
        """))
    code, out, err = run(tmp_path, "config", "--variables")
    assert code == 0, err
    assert out == (  # Go's tabwriter: minwidth 20, padding 3
        "NAME                REQUIRED            DEFAULT VALUE       ALTERNATE VALUE\n"
        "ALT                 false                                   on\n"
        "INNER1              false                                   \n"
        "OUTER               false               ${INNER1}           \n"
        "PLAIN               false                                   \n"
        "PORT                false               8080                \n"
        "REQ                 true                                    \n"
        "TAG                 false               latest              \n")
    assert run(tmp_path, "config", "--variables", "--format", "json")[1] == out  # v2 ignores --format here


def test_extract_variables_walks_as_compose_go() -> None:
    found = extract_variables({"a": ["${IN_LIST}", {"x": "${IN_MAP_IN_LIST}"}], "b": {"c": "$$ ${D?}"}})
    assert sorted(found) == ["D", "IN_LIST"]  # mappings inside sequences are not looked into
    assert found["D"].required


def test_environment_lists_the_interpolation_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAG", "from-shell")
    (tmp_path / "compose.yaml").write_text("name: envs\nservices:\n  web: {image: busybox}\n")
    (tmp_path / ".env").write_text("DOTENV_ONLY=1\nTAG=from-dotenv\n")
    code, out, err = run(tmp_path, "config", "--environment")
    assert code == 0, err
    lines = out.splitlines()
    assert lines == sorted(lines)
    assert "TAG=from-shell" in lines and "DOTENV_ONLY=1" in lines and "COMPOSE_PROJECT_NAME=envs" in lines


def test_no_consistency_lets_undefined_references_through(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        name: loose
        services:
          web:
            image: busybox
            networks: [nowhere]
            volumes: ["missing:/m"]
            depends_on: [ghost]
        """))
    code, _, err = run(tmp_path, "config")
    assert code != 0 and "undefined" in err
    code, out, err = run(tmp_path, "config", "--no-consistency")
    assert code == 0, err
    assert "      nowhere: null\n" in out and "        source: missing\n" in out and "      ghost:\n" in out


@pytest.mark.parametrize(("image", "ref"), [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("user/app", "docker.io/user/app:latest"),
    ("docker.io/app", "docker.io/library/app:latest"),
    ("localhost/app", "localhost/app:latest"),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
    ("reg.example:5000/a:t", "reg.example:5000/a:t"),
    ("busybox:1@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64),  # the tag goes
])
def test_docker_ref_normalises_as_parse_docker_ref(image: str, ref: str) -> None:
    from dockyard.compose.digests import docker_ref

    assert docker_ref(image) == ref


def test_no_normalize_leaves_out_what_normalize_adds(tmp_path: Path) -> None:
    """compose-go's Normalize adds the default network, the default dockerfile, links' dependencies,
    pull_policy missing for if_not_present and the resources' names; --no-normalize skips it (the loader's
    other defaults, such as a secret's target and absolute paths, stay)."""
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        name: nn
        services:
          web:
            image: busybox
            build: ./web
            links: [db]
            pull_policy: if_not_present
            secrets: [pw]
          db:
            image: postgres
            networks: [back]
        networks:
          back: {}
          named: {name: custom}
        volumes:
          data: {}
        secrets:
          pw: {file: ./pw.txt}
        """))
    code, out, err = run(tmp_path, "config", "--no-normalize")
    assert code == 0, err
    assert out == textwrap.dedent(f"""\
        name: nn
        services:
          db:
            image: postgres
            networks:
              back: null
          web:
            build:
              context: {tmp_path}/web
            image: busybox
            links:
              - db
            pull_policy: if_not_present
            secrets:
              - source: pw
                target: /run/secrets/pw
        networks:
          back: {{}}
          named:
            name: custom
        volumes:
          data: {{}}
        secrets:
          pw:
            file: {tmp_path}/pw.txt
        """)
    code, normal, _ = run(tmp_path, "config")
    assert "      dockerfile: Dockerfile\n" in normal and "    pull_policy: missing\n" in normal
    assert "  default:\n    name: nn_default\n" in normal and "      db:\n        condition: service_started\n" in normal


def test_no_path_resolution_keeps_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        name: nr
        services:
          web:
            build: ./web
            volumes: ["./src:/src", {type: bind, source: ../up, target: /up}]
            secrets: [pw]
        secrets:
          pw: {file: ./pw.txt}
        """))
    code, out, err = run(tmp_path, "config", "--no-path-resolution")
    assert code == 0, err
    assert "      context: ./web\n" in out and "        source: ./src\n" in out and "        source: ../up\n" in out
    assert "    file: ./pw.txt\n" in out and str(tmp_path) not in out
    code, out, err = run(tmp_path, "config")
    assert f"      context: {tmp_path}/web\n" in out and f"        source: {tmp_path}/src\n" in out
