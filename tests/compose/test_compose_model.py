"""The compose model without a daemon: file lookup, merge, include/extends, env, interpolation, profiles,
validation messages and exit codes, and `compose config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockyard.compose.errors import ComposeError, ProjectError
from dockyard.compose.interpolate import InterpolationError, substitute
from dockyard.compose.labels import config_hash
from dockyard.compose.loader import LoadOptions, load_project
from helpers.compose_run import run_compose

DOCKYARD = os.path.join(os.path.dirname(sys.executable), "dockyard")


def write(d: Path, name: str, text: str) -> Path:
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))
    return p


def load(d: Path, env: dict[str, str] | None = None, **kw: object) -> object:
    return load_project(LoadOptions(cwd=str(d), environ=env or {}, **kw))  # type: ignore[arg-type]


# -- interpolation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text,env,want", [
    ("${A}", {"A": "x"}, "x"),
    ("$A-$B", {"A": "x", "B": "y"}, "x-y"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:+alt}", {"A": "1"}, "alt"),
    ("${A:+alt}", {"A": ""}, ""),
    ("${A+alt}", {"A": ""}, "alt"),
    ("$$A", {"A": "x"}, "$A"),
    ("${A:-${B:-deep}}", {}, "deep"),
    ("${A:-${B}}", {"B": "b"}, "b"),
    ("no vars", {}, "no vars"),
    ("${UNSET}", {}, ""),
])
def test_substitute(text: str, env: dict[str, str], want: str) -> None:
    assert substitute(text, env.get) == want


def test_required_variable_error() -> None:
    with pytest.raises(InterpolationError, match="required variable A is missing a value: need it"):
        substitute("${A:?need it}", {"A": ""}.get)
    assert substitute("${A?x}", {"A": ""}.get) == ""
    with pytest.raises(InterpolationError, match="invalid interpolation format"):
        substitute("${A", {}.get)


def test_interpolation_error_names_file_and_key(tmp_path: Path) -> None:
    f = write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: "${IMAGE:?set IMAGE}"
        """)
    with pytest.raises(ProjectError) as e:
        load(tmp_path)
    assert str(f) in e.value.message
    assert "services.web.image" in e.value.message
    assert "required variable IMAGE is missing a value: set IMAGE" in e.value.message
    assert e.value.code == 15


def test_dotenv_and_shell_precedence(tmp_path: Path) -> None:
    write(tmp_path, ".env", """\
        TAG=from-dotenv
        # a comment
        export OTHER='lit $TAG'
        QUOTED="a\\nb ${TAG}"
        INLINE=val # comment
        """)
    write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox:${TAG}
            environment:
              OTHER: ${OTHER}
              QUOTED: ${QUOTED}
              INLINE: ${INLINE}
        """)
    p = load(tmp_path)
    env = p.services["web"]["environment"]  # type: ignore[attr-defined]
    assert p.services["web"]["image"] == "busybox:from-dotenv"  # type: ignore[attr-defined]
    assert env == {"OTHER": "lit $TAG", "QUOTED": "a\nb from-dotenv", "INLINE": "val"}
    p2 = load(tmp_path, {"TAG": "shell"})
    assert p2.services["web"]["image"] == "busybox:shell"  # type: ignore[attr-defined]
    alt = write(tmp_path, "alt.env", "TAG=alt\n")
    p3 = load(tmp_path, env_files=[str(alt)])
    assert p3.services["web"]["image"] == "busybox:alt"  # type: ignore[attr-defined]


# -- files, names, merge ------------------------------------------------------------------------------
def test_lookup_in_parents_with_override_and_name(tmp_path: Path) -> None:
    write(tmp_path, "My_Proj/compose.yaml", "services:\n  web:\n    image: busybox\n    labels: [a=1]\n")
    write(tmp_path, "My_Proj/compose.override.yaml", "services:\n  web:\n    labels: {b: '2'}\n")
    sub = tmp_path / "My_Proj" / "deep" / "er"
    sub.mkdir(parents=True)
    p = load(sub)
    assert p.name == "my_proj"  # type: ignore[attr-defined]
    assert p.working_dir == str(tmp_path / "My_Proj")  # type: ignore[attr-defined]
    assert [os.path.basename(f) for f in p.config_files] == ["compose.yaml", "compose.override.yaml"]  # type: ignore[attr-defined]
    assert p.services["web"]["labels"] == {"a": "1", "b": "2"}  # type: ignore[attr-defined]
    assert load(sub, {"COMPOSE_PROJECT_NAME": "envname"}).name == "envname"  # type: ignore[attr-defined]
    assert load(sub, project_name="flag").name == "flag"  # type: ignore[attr-defined]
    with pytest.raises(ComposeError, match='invalid project name "Bad!"'):
        load(sub, project_name="Bad!")


def test_no_file_exit_code(tmp_path: Path) -> None:
    with pytest.raises(ComposeError) as e:
        load(tmp_path)
    assert e.value.message == "no configuration file provided: not found"
    assert e.value.code == 14


def test_top_level_name_and_compose_file_env(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", "name: top\nservices:\n  a:\n    image: busybox\n")
    write(tmp_path, "two.yaml", "services:\n  b:\n    image: busybox\n")
    p = load(tmp_path, {"COMPOSE_FILE": "one.yaml:two.yaml"})
    assert p.name == "top" and sorted(p.services) == ["a", "b"]  # type: ignore[attr-defined]


def test_merge_rules(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """\
        services:
          web:
            image: busybox
            command: ["sh", "-c", "one"]
            environment: [A=1, B=2]
            ports: ["80:80"]
            volumes: ["./a:/data", "v:/keep"]
            dns: [1.1.1.1]
            depends_on: [db]
          db:
            image: busybox
        volumes: {v: {}}
        """)
    write(tmp_path, "b.yaml", """\
        services:
          web:
            command: echo two
            environment: {B: "3", C: "4"}
            ports: ["80:80", "81:81"]
            volumes: ["./b:/data"]
            dns: [1.1.1.1, 8.8.8.8]
            depends_on:
              db: {condition: service_healthy}
        """)
    p = load(tmp_path, files=["a.yaml", "b.yaml"])
    web = p.services["web"]  # type: ignore[attr-defined]
    assert web["command"] == ["echo", "two"]
    assert web["environment"] == {"A": "1", "B": "3", "C": "4"}
    assert [x["published"] for x in web["ports"]] == ["80", "81"]
    assert {(v.get("source"), v["target"]) for v in web["volumes"]} == {(str(tmp_path / "b"), "/data"),
                                                                        ("v", "/keep")}
    assert web["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert web["depends_on"]["db"]["condition"] == "service_healthy"


def test_include_and_extends(tmp_path: Path) -> None:
    write(tmp_path, "lib/common.yaml", """\
        services:
          base:
            image: busybox
            environment: {FROM: base}
            volumes: ["./conf:/conf"]
        """)
    write(tmp_path, "lib/db.yaml", "services:\n  db:\n    image: busybox\n    command: [sleep, '1000']\n")
    write(tmp_path, "compose.yaml", """\
        include:
          - lib/db.yaml
        services:
          web:
            extends:
              file: lib/common.yaml
              service: base
            environment: {OWN: "1"}
          worker:
            extends: web
            command: [echo, worker]
        """)
    p = load(tmp_path)
    assert sorted(p.services) == ["db", "web", "worker"]  # type: ignore[attr-defined]
    web = p.services["web"]  # type: ignore[attr-defined]
    assert web["image"] == "busybox"
    assert web["environment"] == {"FROM": "base", "OWN": "1"}
    assert web["volumes"][0]["source"] == str(tmp_path / "lib" / "conf")
    assert p.services["worker"]["command"] == ["echo", "worker"]  # type: ignore[attr-defined]
    assert p.services["worker"]["environment"]["FROM"] == "base"  # type: ignore[attr-defined]


def test_include_conflict(tmp_path: Path) -> None:
    write(tmp_path, "inc.yaml", "services:\n  web:\n    image: busybox\n")
    write(tmp_path, "compose.yaml", "include: [inc.yaml]\nservices:\n  web:\n    image: busybox\n")
    with pytest.raises(ProjectError, match="conflicting service web"):
        load(tmp_path)


def test_profiles(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """\
        services:
          web: {image: busybox}
          debug: {image: busybox, profiles: [dev]}
          tools: {image: busybox, profiles: [ops, dev]}
        """)
    assert sorted(load(tmp_path).services) == ["web"]  # type: ignore[attr-defined]
    assert sorted(load(tmp_path, profiles=["dev"]).services) == ["debug", "tools", "web"]  # type: ignore[attr-defined]
    assert sorted(load(tmp_path, {"COMPOSE_PROFILES": "ops"}).services) == ["tools", "web"]  # type: ignore[attr-defined]
    assert sorted(load(tmp_path, profiles=["*"]).services) == ["debug", "tools", "web"]  # type: ignore[attr-defined]
    p = load_project(LoadOptions(cwd=str(tmp_path), environ={}), services=["debug"])
    assert "debug" in p.services


# -- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc,message", [
    ("services:\n  web:\n    imag: busybox\n", "services.web additional properties 'imag' not allowed"),
    ("services:\n  web:\n    image: busybox\n    ports: 80\n", "services.web.ports must be a list"),
    ("services:\n  web:\n    image: busybox\n    environment: 3\n", "services.web.environment must be a"),
    ("servics:\n  web:\n    image: busybox\n", "(root) additional properties 'servics' not allowed"),
    ("services:\n  web:\n    image: busybox\n    depends_on: [db]\n",
     'service "web" depends on undefined service "db": invalid compose project'),
    ("services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
     "dependency cycle detected: a -> b -> a"),
    ("services:\n  web:\n    command: x\n", 'service "web" has neither an image nor a build context specified'),
    ("services:\n  web: [\n", "yaml: line"),
])
def test_validation_messages(tmp_path: Path, doc: str, message: str) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(doc)
    with pytest.raises(ComposeError) as e:
        load(tmp_path)
    assert message in e.value.message, e.value.message
    assert e.value.code == 15
    if "additional" in message or "must be" in message:
        assert e.value.message.startswith(f"validating {f}: ")


# -- normalization and the hash ------------------------------------------------------------------------
def test_ports_volumes_and_hash(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """\
        services:
          web:
            image: busybox
            ports:
              - "127.0.0.1:8000-8001:80-81/udp"
              - 9000
              - target: 90
                published: "9090"
                host_ip: 127.0.0.1
            volumes:
              - type: tmpfs
                target: /tmp
              - /anon
              - vol:/v:nocopy
            scale: 2
        volumes: {vol: {}}
        """)
    p = load(tmp_path)
    web = p.services["web"]  # type: ignore[attr-defined]
    assert [(x["target"], x.get("published"), x.get("host_ip"), x["protocol"]) for x in web["ports"]] == [
        (80, "8000", "127.0.0.1", "udp"), (81, "8001", "127.0.0.1", "udp"), (9000, None, None, "tcp"),
        (90, "9090", "127.0.0.1", "tcp")]
    assert web["volumes"][1] == {"type": "volume", "target": "/anon", "volume": {}}  # as compose-go parses it
    assert web["volumes"][2]["volume"] == {"nocopy": True}
    h = config_hash(web)
    assert config_hash({**web, "scale": 5}) == h  # scale alone recreates nothing
    assert config_hash({**web, "image": "other"}) != h


# -- the command line -------------------------------------------------------------------------------------
def test_config_command_outputs(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", """\
        services:
          web: {image: busybox, depends_on: [db], volumes: ["data:/d"]}
          db: {image: "busybox:${TAG:-1}", profiles: [x]}
        volumes: {data: {}}
        """)
    def run(*args: str) -> tuple[int, str, str]:
        return run_compose(tmp_path, *args)

    code, out, err = run("--profile", "x", "config", "--services")
    assert (code, out) == (0, "db\nweb\n"), err
    assert run("--profile", "x", "config", "--volumes")[1] == "data\n"
    assert run("config", "--profiles")[1] == "x\n"
    assert run("--profile", "x", "config", "--images")[1] == "busybox:1\nbusybox\n"
    code, out, _ = run("--profile", "x", "config", "--format", "json")
    doc = json.loads(out)
    assert doc["name"] == tmp_path.name.lower() and doc["volumes"]["data"]["name"].endswith("_data")
    assert run("--profile", "x", "config", "-q") == (0, "", "")
    h = run("--profile", "x", "config", "--hash", "web")[1].split()
    assert h[0] == "web" and len(h[1]) == 64
    code, _, err = run("config")
    assert code == 15 and 'service "db" was pulled in as a dependency of service "web"' in err
    assert run("bogus")[0] == 16


def test_cli_entry_and_plugin_metadata(tmp_path: Path) -> None:
    r = subprocess.run([DOCKYARD, "compose", "config", "--services"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 14 and r.stderr.strip() == "no configuration file provided: not found"
    r = subprocess.run([DOCKYARD, "compose", "docker-cli-plugin-metadata"], capture_output=True, text=True)
    meta = json.loads(r.stdout)
    assert meta["SchemaVersion"] == "0.1.0" and meta["Vendor"] == "Dockyard"
