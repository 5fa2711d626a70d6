"""The config hash is Compose v2's ServiceHash, byte for byte (unit tests; the end-to-end ones are in
test_compose_model_e2e.py).

Compose v2 is not installable here, so the expected bytes below were written by hand from the rules, not
recorded: Compose 2.29.7's pkg/compose/hash.go clears Build, PullPolicy, Scale, Deploy.Replicas and DependsOn
(not Profiles: 2.30.2 added that) and hashes ``json.Marshal`` of compose-go v2.2.0's types.ServiceConfig. So each
expected text is that struct's fields in declaration order, under their json tags, with Go's omitempty (zero
values, nil pointers and empty slices/maps dropped; Deploy's Resources and Placement are structs held by value,
so always there), Command/Entrypoint without omitempty (``null``), map keys sorted, ``<>&`` as ``\\u003c``
``\\u003e`` ``\\u0026``, and the types' MarshalJSON: UnitBytes a quoted decimal, Duration Go's String(),
HostsList a sorted ``host=ip`` list, a single ulimit a number, a required EnvFile its path, *bool/*uint64 printed
even when false/0, ``x-*`` extensions never (``json:"-"``). The loader's defaults are compose-go's: short-syntax
volumes carry ``volume: {}`` / ``bind: {create_host_path: true}``, ports get mode ingress and protocol tcp, a
service without networks is on ``default`` (null), a healthcheck string is CMD-SHELL.
"""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from dockyard.compose.loader import LoadOptions, load_project
from dockyard.compose.servicehash import go_float32, service_json
from helpers.compose_run import run_compose as run

COMPOSE = """\
name: hashes
services:
  app:
    image: busybox:1.36
    command: echo "a<b>&c"
    environment:
      B: 2
      A:
    ports: ["127.0.0.1:8080:80", {target: 53, protocol: udp}]
    volumes:
      - data:/data:ro
      - ./src:/src
      - {type: volume, source: data, target: /d2}
    healthcheck: {test: "true", interval: 30s, retries: 0}
    deploy:
      replicas: 3
      resources: {limits: {cpus: "0.25", memory: 64m}}
    init: false
    ulimits: {nofile: {soft: 10, hard: 10}, nproc: 64}
    extra_hosts: ["h2:10.0.0.2", "h1=10.0.0.1"]
    stop_grace_period: 90s
    shm_size: 1g
    labels: {z: "1", a: x}
    depends_on: [db]
    pull_policy: always
    x-ignored: {by: the hash}
  db:
    image: postgres
    scale: 2
    profiles: [p]
    networks: {back: {aliases: [d]}}
    env_file: db.env
    environment: [Y=2]
networks:
  back: {}
volumes:
  data: {}
"""

APP = ('{"command":["echo","a\\u003cb\\u003e\\u0026c"],'
       '"deploy":{"resources":{"limits":{"cpus":0.25,"memory":"67108864"}},"placement":{}},'
       '"entrypoint":null,"environment":{"A":null,"B":"2"},"extra_hosts":["h1=10.0.0.1","h2=10.0.0.2"],'
       '"healthcheck":{"test":["CMD-SHELL","true"],"interval":"30s","retries":0},"image":"busybox:1.36",'
       '"init":false,"labels":{"a":"x","z":"1"},"networks":{"default":null},'
       '"ports":[{"mode":"ingress","host_ip":"127.0.0.1","target":80,"published":"8080","protocol":"tcp"},'
       '{"mode":"ingress","target":53,"protocol":"udp"}],'
       '"shm_size":"1073741824","stop_grace_period":"1m30s",'
       '"ulimits":{"nofile":{"soft":10,"hard":10},"nproc":64},'
       '"volumes":[{"type":"volume","source":"data","target":"/data","read_only":true,"volume":{}},'
       '{"type":"bind","source":"@DIR@/src","target":"/src","bind":{"create_host_path":true}},'
       '{"type":"volume","source":"data","target":"/d2"}]}')
# as `up` hashes it: the env file read into the environment, the list dropped (WithDiscardEnvFile)
DB_UP = ('{"profiles":["p"],"command":null,"entrypoint":null,"environment":{"X":"1","Y":"2"},"image":"postgres",'
         '"networks":{"back":{"aliases":["d"]}}}')
# as `config --hash` hashes it (WithoutEnvironmentResolution): the list kept, only the service's own entries
DB_CONFIG = ('{"profiles":["p"],"command":null,"entrypoint":null,"environment":{"Y":"2"},'
             '"env_file":["@DIR@/db.env"],"image":"postgres","networks":{"back":{"aliases":["d"]}}}')


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "A", "B", "X", "Y"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "db.env").write_text("X=1\n")
    return tmp_path


def test_service_json_is_go_json_of_the_v2_model(proj: Path) -> None:
    project = load_project(LoadOptions(cwd=str(proj), profiles=["p"], environ={}))
    assert service_json(project.services["app"]) == APP.replace("@DIR@", str(proj))
    assert service_json(project.services["db"]) == DB_UP
    assert service_json(project.services["db"], env_files_read=False) == DB_CONFIG.replace("@DIR@", str(proj))


def test_config_hash_prints_v2_lines(proj: Path) -> None:
    code, out, err = run(proj, "--profile", "p", "config", "--hash", "*")
    assert code == 0, err
    assert out == (f"app {sha(APP.replace('@DIR@', str(proj)))}\n"
                   f"db {sha(DB_CONFIG.replace('@DIR@', str(proj)))}\n")
    code, out2, err = run(proj, "--profile", "p", "config", "--hash", "db,app")  # sorted, as v2 prints them
    assert (code, out2) == (0, out), err
    code, out3, err = run(proj, "--profile", "p", "config", "--hash", "app")
    assert (code, out3) == (0, out.splitlines(keepends=True)[0]), err
    code, _, err = run(proj, "--profile", "p", "config", "--hash", "nope")
    assert code != 0 and "no such service: nope" in err


@pytest.mark.parametrize(("change", "same"), [
    ("    scale: 2\n", True),                   # scale is cleared
    ("    pull_policy: missing\n", True),      # pull_policy is cleared
    ("    deploy: {replicas: 4}\n", False),    # replicas is cleared, but the deploy struct is now there
    ("    x-note: changed\n", True),           # extensions are json:"-"
    ("    build: ./ctx\n", True),              # build is cleared
    ("    platform: linux/amd64\n", False),
    ("    init: false\n", False),              # a *bool set to false is printed
    ("    environment: [Y=3]\n", False),
])
def test_what_changes_the_hash(proj: Path, change: str, same: bool) -> None:
    base = load_project(LoadOptions(cwd=str(proj), profiles=["p"], environ={}))
    text = COMPOSE.replace("    scale: 2\n", "").replace("    environment: [Y=2]\n", "    environment: [Y=2]\n" + change)
    if "environment: [Y=3]" in change:
        text = text.replace("    environment: [Y=2]\n", "")
    (proj / "compose.yaml").write_text(text)
    after = load_project(LoadOptions(cwd=str(proj), profiles=["p"], environ={}))
    assert (service_json(after.services["db"]) == service_json(base.services["db"])) is same


def test_depends_on_does_not_count(proj: Path) -> None:
    base = load_project(LoadOptions(cwd=str(proj), profiles=["p"], environ={}))
    (proj / "compose.yaml").write_text(COMPOSE.replace("    depends_on: [db]\n", ""))
    after = load_project(LoadOptions(cwd=str(proj), profiles=["p"], environ={}))
    assert service_json(after.services["app"]) == service_json(base.services["app"])


def test_deploy_with_only_replicas_hashes_its_empty_structs(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          s: {image: busybox, deploy: {replicas: 2}, networks: {n: {}}, command: []}
        networks: {n: {}}
        """))
    project = load_project(LoadOptions(cwd=str(tmp_path), project_name="t", environ={}))
    assert service_json(project.services["s"]) == (
        '{"command":[],"deploy":{"resources":{},"placement":{}},"entrypoint":null,"image":"busybox",'
        '"networks":{"n":{}}}')  # an empty mapping is a non-nil *ServiceNetworkConfig


def test_go_float32() -> None:
    # strconv.FormatFloat(float64(float32(x)), 'f', -1, 32) and json's 'e' form outside [1e-6, 1e21)
    assert [go_float32(x) for x in (0.5, 0.1, 1.5, 2, 0.25, 1e-7, 3.3)] == [
        "0.5", "0.1", "1.5", "2", "0.25", "1e-07", "3.3"]


def test_watch_paths_are_absolute_in_the_hash(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          s:
            image: busybox
            develop:
              watch:
                - {path: ./src, action: sync, target: /app}
        """))
    project = load_project(LoadOptions(cwd=str(tmp_path), project_name="t", environ={}))
    assert service_json(project.services["s"]) == (
        '{"develop":{"watch":[{"path":"' + str(tmp_path / "src") + '","action":"sync","target":"/app"}]},'
        '"command":null,"entrypoint":null,"image":"busybox","networks":{"default":null}}')


def test_plain_scalars_read_as_yaml_v3_reads_them(tmp_path: Path) -> None:
    """compose-go parses with yaml.v3: only true/false are booleans and there are no base-60 numbers, so
    ``restart: no``, ``FLAG: yes`` and ``- 22:22`` are the strings they look like (PyYAML's YAML 1.1 would
    make them False, True and 1342)."""
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          s:
            image: busybox
            restart: no
            environment: {FLAG: yes, OFF: off, ON: true}
            ports:
              - 22:22
        """))
    project = load_project(LoadOptions(cwd=str(tmp_path), project_name="t", environ={}))
    assert service_json(project.services["s"]) == (
        '{"command":null,"entrypoint":null,"environment":{"FLAG":"yes","OFF":"off","ON":"true"},"image":"busybox",'
        '"networks":{"default":null},"ports":[{"mode":"ingress","target":22,"published":"22","protocol":"tcp"}],'
        '"restart":"no"}')
