"""The API boundary's JSON checks: types from the swagger table in moby's wording, depth and label bounds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dockyard.api.bodycheck import BodyRejected, RequestLimits, check_depth, parse, schema_for

SPEC = "/work/shared/specs/docker-engine-api-v1.47.yaml"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIMITS = RequestLimits()


def rejected(body: object, method: str, path: str, limits: RequestLimits = LIMITS) -> str:
    with pytest.raises(BodyRejected) as e:
        parse(json.dumps(body).encode(), method, path, limits)
    assert e.value.status == 400
    return str(e.value)


def test_wrong_types_found_anywhere_in_the_body() -> None:
    assert rejected({"Container": "c", "EndpointConfig": "x"}, "POST", "/networks/n/connect") == (
        "json: cannot unmarshal string into Go struct field NetworkConnectRequest.EndpointConfig "
        "of type EndpointSettings")
    assert "Go struct field NetworkDisconnectRequest.Force of type bool" in rejected(
        {"Container": "c", "Force": "yes"}, "POST", "/networks/n/disconnect")
    assert rejected("ls", "POST", "/containers/c/exec") == \
        "json: cannot unmarshal string into Go value of type ExecConfig"
    assert rejected(True, "POST", "/containers/c/exec") == \
        "json: cannot unmarshal bool into Go value of type ExecConfig"
    assert rejected({"Image": "b", "HostConfig": {"Memory": "1g"}}, "POST", "/containers/create") == (
        "json: cannot unmarshal string into Go struct field ContainerCreateRequest.HostConfig.Memory of type int64")
    assert "PortBindings.HostPort of type string" in rejected(
        {"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}}, "POST", "/containers/create")
    assert "of type []string" in rejected({"Env": "A=1"}, "POST", "/containers/create")
    assert "Go value of type VolumeCreateOptions" in rejected([], "POST", "/volumes/create")
    assert "Labels of type string" in rejected({"Name": "n", "Labels": {"a": 1}}, "POST", "/networks/create")


def test_what_moby_accepts_passes() -> None:
    ok = {"Image": "busybox", "Cmd": "ls -l", "Entrypoint": None, "Env": None, "labels": {"a": "b"},
          "ExposedPorts": {"80/tcp": {}}, "Unknown": {"x": [1]},
          "HostConfig": {"Memory": 0, "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
          "NetworkingConfig": {"EndpointsConfig": {"n": {"Aliases": ["a"]}}}}
    assert parse(json.dumps(ok).encode(), "POST", "/containers/create", LIMITS) == ok
    assert parse(b"null", "POST", "/containers/c/exec", LIMITS) is None
    assert parse(b'{"anything": 1}', "POST", "/containers/c/kill", LIMITS) == {"anything": 1}  # no body schema
    assert schema_for("POST", "/images/load") is None and schema_for("POST", "/build") is None  # streams


def test_depth_and_labels_bounded() -> None:
    with pytest.raises(BodyRejected, match="nesting depth exceeds the limit of 100"):
        parse(b"[" * 200_000 + b"]" * 200_000, "POST", "/containers/create", LIMITS)
    check_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 3)  # brackets inside strings do not count
    small = RequestLimits(max_labels=3, max_label_bytes=10)
    assert "too many labels: 4 (the limit is 3)" in rejected({"Labels": dict.fromkeys("abcd", "")}, "POST",
                                                            "/containers/create", small)
    assert "is too large: 21 bytes" in rejected({"Name": "n", "Labels": {"k": "v" * 20}}, "POST",
                                                "/networks/create", small)
    assert "too many labels" in rejected({"Labels": dict.fromkeys("abcd", "")}, "POST", "/volumes/create", small)


@pytest.mark.skipif(not os.path.exists(SPEC), reason="the Engine API swagger document is not on this machine")
def test_table_is_generated_from_the_spec(tmp_path: object) -> None:
    out = os.path.join(str(tmp_path), "t.json")
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "gen_body_schemas.py"), SPEC, out], check=True)
    with open(out) as f, open(os.path.join(REPO, "src", "dockyard", "api", "data", "body_schemas.json")) as g:
        assert json.load(f) == json.load(g)
