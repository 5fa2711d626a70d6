"""`config --no-interpolate`: Compose v2's LoadModel form (compose/model.py).

The expected text follows Compose 2.29.7's runConfigNoInterpolate: ToModel with SkipInterpolation (compose-go
v2.2.0's loader passes: canonical long syntax where it parses, defaults, resolved paths, Normalize), printed as a
plain map by yaml.v3 (indent 2, keys sorted) or json.MarshalIndent, with no ``$$`` escaping.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from helpers.compose_run import run_compose as run

COMPOSE = """\
name: ni
x-top: ${TOP:-t}
services:
  web:
    image: "busybox:${TAG:-latest}"
    command: echo $$HOME ${GREETING}
    environment:
      - MODE=${MODE:-prod}
      - KNOWN
      - UNSET_ONE
    env_file: web.env
    ports:
      - "${PORT:-8080}:80"
      - "9000:9000"
    volumes:
      - ./src:/src:ro
      - data:/data
    depends_on: [db]
    healthcheck:
      test: wget -q localhost
      interval: ${IVAL:-30s}
    profiles: [web]
  db:
    image: postgres
    ports: ["5432:5432", {target: 99}]
    secrets: [pw]
    networks: [back]
    build: ./db
    links: [web]
networks:
  back:
    external: true
volumes:
  data: {}
secrets:
  pw:
    file: ./pw.txt
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TOP", "TAG", "GREETING", "MODE", "UNSET_ONE", "PORT", "IVAL", "COMPOSE_FILE",
                "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KNOWN", "k1")
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "web.env").write_text("E1=x\n")
    return tmp_path


def test_yaml_keeps_variables_as_written(proj: Path) -> None:
    code, out, err = run(proj, "config", "--no-interpolate")
    assert code == 0, err
    assert err == ""  # nothing is looked up, so nothing is unset
    assert out == textwrap.dedent(f"""\
        name: ni
        networks:
          back:
            external: true
            name: back
          default:
            name: ni_default
        secrets:
          pw:
            file: {proj}/pw.txt
            name: ni_pw
        services:
          db:
            build:
              context: {proj}/db
              dockerfile: Dockerfile
            depends_on:
              web:
                condition: service_started
                required: true
                restart: true
            image: postgres
            links:
              - web
            networks:
              back: null
            ports:
              - mode: ingress
                protocol: tcp
                published: "5432"
                target: 5432
              - mode: ingress
                protocol: tcp
                target: 99
            secrets:
              - source: pw
                target: /run/secrets/pw
          web:
            command: echo $$HOME ${{GREETING}}
            depends_on:
              db:
                condition: service_started
                required: true
            env_file:
              - path: {proj}/web.env
                required: true
            environment:
              - MODE=${{MODE:-prod}}
              - KNOWN=k1
              - UNSET_ONE
            healthcheck:
              interval: ${{IVAL:-30s}}
              test: wget -q localhost
            image: busybox:${{TAG:-latest}}
            networks:
              default: null
            ports:
              - ${{PORT:-8080}}:80
              - 9000:9000
            profiles:
              - web
            volumes:
              - bind:
                  create_host_path: true
                read_only: true
                source: {proj}/src
                target: /src
                type: bind
              - source: data
                target: /data
                type: volume
                volume: {{}}
        volumes:
          data:
            name: ni_data
        x-top: ${{TOP:-t}}
        """)


def test_json_is_a_sorted_map_without_escaping(proj: Path) -> None:
    code, out, err = run(proj, "config", "--no-interpolate", "--format", "json")
    assert code == 0, err
    assert not out.endswith("\n")
    doc = json.loads(out)
    assert list(doc) == ["name", "networks", "secrets", "services", "volumes", "x-top"]
    assert doc["services"]["web"]["command"] == "echo $$HOME ${GREETING}"
    assert doc["services"]["web"]["image"] == "busybox:${TAG:-latest}"
    assert list(doc["services"]["web"]) == sorted(doc["services"]["web"])


def test_interpolated_form_differs(proj: Path) -> None:
    code, out, _ = run(proj, "--profile", "web", "config")
    assert code == 0
    assert "busybox:latest" in out and "${TAG" not in out and "$$HOME" in out  # v2 escapes $ as $$ here
    code, out, _ = run(proj, "--profile", "web", "config", "--no-interpolate", "-q")
    assert (code, out) == (0, "")


def test_an_invalid_file_still_fails(proj: Path) -> None:
    (proj / "compose.yaml").write_text("services:\n  web:\n    imag: x\n")
    code, out, err = run(proj, "config", "--no-interpolate")
    assert code != 0 and out == ""
    assert "additional properties 'imag' not allowed" in err
