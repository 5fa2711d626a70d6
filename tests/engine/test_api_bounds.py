"""Bounded requests and typed bodies, end to end: wrong JSON types answer 400 in moby's wording and change
nothing; too large, too deep or too labelled bodies answer 413/400 and cost the daemon no lasting memory; the
bounds are daemon.json settings; streamed bodies (image load) stay unbounded."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from helpers.daemon import TestDaemon, finish_daemon
from helpers.hostprobe import rss_kib

pytestmark = pytest.mark.dockyard_only("dockyard's request bounds (body size, depth, label count, 405 for other "
                                       "methods) and their daemon.json settings; dockerd 20.10 has none of them")


@pytest.fixture(scope="module")
def d(daemon: TestDaemon, busybox_image: str) -> Iterator[TestDaemon]:
    yield daemon


def _message(body: bytes) -> str:
    return str(json.loads(body)["message"])


@pytest.mark.dockyard_only("the Go type names in moby's unmarshal errors change between releases; dockyard names the "
                           "API 1.47 schema's (dockerd 20.10 says NetworkConnect.EndpointConfig of type "
                           "network.EndpointSettings)")
def test_wrong_types_are_400_and_change_nothing(d: TestDaemon) -> None:
    assert d.api("POST", "/networks/create", {"Name": "typed"})[0] == 201
    p = d.docker("run", "-d", "--name", "typed1", "busybox", "sleep", "600")
    assert p.returncode == 0, p.stderr
    try:
        status, _, body = d.api("POST", "/networks/typed/connect", {"Container": "typed1", "EndpointConfig": 7})
        assert status == 400, body
        assert _message(body) == ("json: cannot unmarshal number into Go struct field "
                                  "NetworkConnectRequest.EndpointConfig of type EndpointSettings")
        for bad in ({"Container": "typed1", "Force": "yes"}, {"Container": ["typed1"]}, "typed1"):
            status, _, body = d.api("POST", "/networks/bridge/disconnect", bad)
            assert status == 400 and "NetworkDisconnectRequest" in _message(body), body
        for raw in (b'"sh"', b"true", b"[1]"):
            status, _, body = d.api("POST", "/containers/typed1/exec", raw)
            assert status == 400, body
            assert _message(body).startswith("json: cannot unmarshal ") and "ExecConfig" in _message(body)
        status, _, body = d.api("POST", "/containers/create?name=typed2", {"Image": "busybox", "Env": "A=1"})
        assert status == 400 and "ContainerCreateRequest.Env of type []string" in _message(body)
        assert d.api("GET", "/containers/typed2/json")[0] == 404
        nets = json.loads(d.api("GET", "/containers/typed1/json")[2])["NetworkSettings"]["Networks"]
        assert list(nets) == ["bridge"]  # neither the refused connect nor the refused disconnects did anything
        assert json.loads(d.api("GET", "/networks/typed")[2])["Containers"] == {}
        # the same request with the right types works
        assert d.api("POST", "/networks/typed/connect", {"Container": "typed1", "EndpointConfig": {}})[0] == 200
    finally:
        d.docker("rm", "-f", "typed1")
        d.docker("network", "rm", "typed")


def test_large_deep_and_labelled_bodies_refused(d: TestDaemon) -> None:
    assert d.proc is not None
    before = rss_kib(d.proc.pid)
    big = json.dumps({"Image": "busybox", "Labels": {"a": "x" * (10 << 20)}}).encode()
    status, _, body = d.api("POST", "/containers/create", big)
    assert status == 413 and "request body too large" in _message(body)
    many = json.dumps({"Image": "busybox", "Labels": {f"l{i}": "v" for i in range(600_000)}}).encode()
    status, _, body = d.api("POST", "/containers/create", many)
    assert status == 413, body
    status, _, body = d.api("POST", "/containers/create", b"[" * 200_000 + b"]" * 200_000)
    assert status == 400 and "nesting depth exceeds the limit of 100" in _message(body)
    status, _, body = d.api("POST", "/volumes/create", {"Labels": {f"l{i}": "v" for i in range(1001)}})
    assert status == 400 and _message(body) == "too many labels: 1001 (the limit is 1000)"
    status, _, body = d.api("GET", "/_ping", headers={"X-Big": "h" * (70 << 10)})
    assert status == 431
    assert rss_kib(d.proc.pid) - before < 30 << 10, "a refused body left the daemon bigger"
    assert d.api("GET", "/_ping")[0] == 200
    # a refused body read on the same connection: the next request on it is served
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.socket)
    try:
        payload = b"x" * (2 << 20)
        s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(payload) + payload +
                  b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        got = b""
        while b"OK" not in got.split(b"413", 1)[-1]:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        assert got.startswith(b"HTTP/1.1 413") and b"HTTP/1.1 200" in got
    finally:
        s.close()


def test_cli_sees_the_label_bound(d: TestDaemon) -> None:
    labels = [a for i in range(1001) for a in ("-l", f"k{i}=v")]
    p = d.docker("run", "--rm", *labels, "busybox", "true")
    assert p.returncode == 125 and "too many labels: 1001 (the limit is 1000)" in p.stderr, p.stderr
    p = d.cli("create", *labels, "busybox", "true")
    assert p.returncode == 125 and "too many labels: 1001" in p.stderr, p.stderr


def test_bounds_from_daemon_json(busybox_tar: str) -> None:
    tmp = tempfile.mkdtemp(prefix="dyt", dir="/tmp")
    cfg = os.path.join(tmp, "daemon.json")
    with open(cfg, "w") as f:
        json.dump({"max-json-body": 4096, "max-labels": 3, "max-json-depth": 8}, f)
    daemon = TestDaemon(["--config-file", cfg], tmp=tmp).start()
    try:
        daemon.load_busybox(busybox_tar)  # a streamed body far over max-json-body is still taken whole
        assert daemon.api("GET", "/images/busybox:latest/json")[0] == 200
        status, _, body = daemon.api("POST", "/containers/create", {"Image": "busybox", "Env": ["A=" + "x" * 5000]})
        assert status == 413 and "the limit for a JSON body is 4096" in _message(body)
        status, _, body = daemon.api("POST", "/containers/create", {"Image": "busybox", "Labels": dict.fromkeys("abcd", "")})
        assert status == 400 and "(the limit is 3)" in _message(body)
        status, _, body = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": [[[[[[[[["x"]]]]]]]]]})
        assert status == 400 and "limit of 8" in _message(body)
        assert daemon.api("POST", "/containers/create", {"Image": "busybox", "Labels": {"a": "b"}})[0] == 201
    finally:
        finish_daemon(daemon)


def test_bad_bound_in_daemon_json_refused() -> None:
    tmp = tempfile.mkdtemp(prefix="dyt", dir="/tmp")
    cfg = os.path.join(tmp, "daemon.json")
    with open(cfg, "w") as f:
        json.dump({"max-labels": "many"}, f)
    daemon = TestDaemon(["--config-file", cfg], tmp=tmp)
    try:
        with pytest.raises(RuntimeError, match="invalid value for max-labels: 'many'"):
            daemon.start(timeout=10)
    finally:
        daemon.remove_tmp()


def test_other_methods_answer_in_json(d: TestDaemon) -> None:
    for method in ("PATCH", "OPTIONS", "TRACE", "FOO"):
        status, headers, body = d.api(method, "/containers/json")
        assert status == 405 and _message(body) == "method not allowed", (method, status, body)
        status, headers, body = d.api(method, "/no/such/path")
        assert status == 404 and headers["content-type"] == "application/json", (method, status, body)
    assert d.api("GET", "/_ping")[0] == 200


def test_fuzz_findings_answer_as_callers_mistakes(d: TestDaemon) -> None:
    """What the API fuzz found answering 500: each is the caller's mistake, in dockerd's words."""
    p = d.docker("create", "--name", "fz-solo", "busybox", "true")
    assert p.returncode == 0, p.stderr
    try:
        status, _, body = d.api("DELETE", "/containers/fz-solo?link=true")
        assert (status, _message(body)) == (409, "Conflict, cannot remove the default link name of the container")
        assert d.api("GET", "/containers/fz-solo/json")[0] == 200  # refused, so nothing was removed
        status, _, body = d.api("DELETE", "/containers/fz-nowhere?link=true")
        assert (status, _message(body)) == (404, "No such container: fz-nowhere")
    finally:
        d.docker("rm", "-f", "fz-solo")
    for remote in ("\\", "ftp://127.0.0.1/ctx.tar", "http://[::1"):
        status, _, body = d.api("POST", f"/build?remote={quote(remote, safe='')}", b"",
                                headers={"Content-Type": "application/x-tar"})
        assert status == 400, (remote, status, body)
        if "://" not in remote or remote.startswith("ftp"):
            assert _message(body) == f"remoteURL ({remote}) could not be recognized as URL", body
        else:
            assert _message(body).startswith(f"unable to prepare context: unable to download remote context "
                                             f"{remote}: "), body


def _inventory(d: TestDaemon) -> list[object]:
    out: list[object] = []
    for path in ("/containers/json?all=1", "/images/json", "/networks", "/volumes"):
        status, _, body = d.api("GET", path)
        assert status == 200, (path, body)
        out.append(json.loads(body))
    return out


def test_every_json_body_is_typed(d: TestDaemon) -> None:
    """Each route of the engine that takes a JSON body (containers, exec, networks, volumes, commit and the
    registry login of the distribution work) refuses a body of the wrong type, and a field of the wrong type
    deep inside it, with a 400 in Go's decoder words, and changes nothing."""
    p = d.docker("run", "-d", "--name", "typed-all", "busybox", "sleep", "600")
    assert p.returncode == 0, p.stderr
    try:
        status, _, body = d.api("POST", "/containers/typed-all/exec", {"Cmd": ["true"]})
        assert status == 201, body
        exec_id = json.loads(body)["Id"]
        routes = [
            ("POST", "/auth", {"username": "u", "password": 7, "serveraddress": "127.0.0.1:1"}),
            ("POST", "/commit?container=typed-all&repo=typed-commit", {"Env": "A=1"}),
            ("POST", "/containers/typed-all/exec", {"Cmd": ["true"], "Tty": "yes"}),
            ("POST", "/containers/typed-all/update", {"Memory": "1g"}),
            ("POST", "/containers/create?name=typed-new", {"Image": "busybox", "HostConfig": {"Binds": "/a:/b"}}),
            ("POST", f"/exec/{exec_id}/start", {"Detach": "no"}),
            ("POST", "/networks/create", {"Name": "typed-net", "Internal": "yes"}),
            ("POST", "/networks/bridge/connect", {"Container": "typed-all", "EndpointConfig": {"Aliases": "a"}}),
            ("POST", "/volumes/create", {"Name": "typed-vol", "Labels": ["a"]}),
        ]
        before = _inventory(d)
        for method, path, bad in routes:
            for body_sent in (bad, "a string", 1.5, [bad]):
                status, _, body = d.api(method, path, body_sent)
                assert status == 400, (method, path, body_sent, status, body)
                assert _message(body).startswith("json: cannot unmarshal "), (path, body)
        assert _inventory(d) == before
        status, _, body = d.api("GET", f"/exec/{exec_id}/json")
        assert status == 200 and json.loads(body)["Running"] is False and json.loads(body)["Pid"] == 0, body
    finally:
        d.docker("rm", "-f", "typed-all")
