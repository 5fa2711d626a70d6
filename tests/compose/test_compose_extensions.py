"""`x-*` extensions through load, merge, interpolation and `compose config`.

compose-go (v2.2.0, Compose 2.29.7) keeps them as ``Extensions`` maps tagged ``yaml:",inline" json:"-"``:
yaml.v3 writes an inline map after the struct's fields, sorted as it sorts map keys; Go's JSON leaves them out
except at the top level, where Project.MarshalJSON puts them into its (sorted) map. A later file replaces an
extension whole (override.mergeMappings never merges an ``x-`` key).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from helpers.compose_run import run_compose as run

PROJECT = """\
name: ext
x-common: &common
  image: busybox
  labels:
    tier: ${TIER:-back}
x-z10: ten
x-z9: nine
services:
  web:
    <<: *common
    command: ["true"]
    x-svc: {b: 2, a: 1}
    build:
      context: .
      x-build: kept
    networks:
      front:
        x-alias: yes-please
networks:
  front:
    x-net: {k: v}
volumes:
  data:
    x-vol: [1, 2]
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TIER", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "compose.yaml").write_text(PROJECT)
    return tmp_path


def test_yaml_prints_extensions_inline_after_the_fields(proj: Path) -> None:
    code, out, err = run(proj, "config")
    assert code == 0, err
    assert out == textwrap.dedent(f"""\
        name: ext
        services:
          web:
            build:
              context: {proj}
              dockerfile: Dockerfile
              x-build: kept
            command:
              - "true"
            image: busybox
            labels:
              tier: back
            networks:
              front:
                x-alias: yes-please
            x-svc:
              a: 1
              b: 2
        networks:
          front:
            name: ext_front
            x-net:
              k: v
        volumes:
          data:
            name: ext_data
            x-vol:
              - 1
              - 2
        x-common:
          image: busybox
          labels:
            tier: back
        x-z9: nine
        x-z10: ten
        """)
    # the canonical form is itself a compose file that renders the same
    again = proj / "again"
    again.mkdir()
    (again / "compose.yaml").write_text(out.replace(str(proj), str(again)))
    code2, out2, err2 = run(again, "config")
    assert code2 == 0, err2
    assert out2 == out.replace(str(proj), str(again))


def test_json_has_top_level_extensions_in_the_sorted_map(proj: Path) -> None:
    code, out, err = run(proj, "config", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc) == ["name", "networks", "services", "volumes", "x-common", "x-z10", "x-z9"]  # bytewise
    assert doc["x-common"] == {"image": "busybox", "labels": {"tier": "back"}}
    assert doc["x-z9"] == "nine"
    assert not [k for k in out.split('"') if k in ("x-svc", "x-build", "x-alias", "x-net", "x-vol")]
    assert doc["services"]["web"]["labels"] == {"tier": "back"}


def test_extensions_are_interpolated_and_anchors_carry_them(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIER", "front")
    code, out, err = run(proj, "config", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["x-common"]["labels"] == {"tier": "front"}
    assert doc["services"]["web"]["labels"] == {"tier": "front"}  # through the << merge key


def test_a_later_file_replaces_an_extension_whole(proj: Path) -> None:
    (proj / "compose.override.yaml").write_text(textwrap.dedent("""\
        x-common:
          image: other
        services:
          web:
            x-svc: {c: 3}
        networks:
          front:
            x-net: {j: w}
        """))
    code, out, err = run(proj, "config")
    assert code == 0, err
    assert "x-common:\n  image: other\nx-z9" in out  # not merged with the first file's labels
    assert "    x-svc:\n      c: 3\n" in out
    assert "    x-net:\n      j: w\n" in out
    # a service's own fields still merge (the anchor was resolved in the first file)
    assert "    labels:\n      tier: back\n" in out


def test_an_extension_inside_extends_is_replaced_too(proj: Path) -> None:
    (proj / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          base:
            image: busybox
            x-meta: {owner: a, team: b}
          child:
            extends: base
            x-meta: {owner: c}
        """))
    code, out, err = run(proj, "config")
    assert code == 0, err
    assert "  child:\n    image: busybox\n    networks:\n      default: null\n    x-meta:\n      owner: c\n" in out
