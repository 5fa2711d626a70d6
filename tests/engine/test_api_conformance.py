"""Create/inspect behaviours that real clients (docker-py's own suite, the docker CLI) rely on, each checked
through the API against a real daemon with docker's documented result."""

from __future__ import annotations

import docker
import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


def test_env_without_value_kept_as_given(client: docker.DockerClient) -> None:
    """docker keeps `Foo` (no '=') in Config.Env; the process sees no such variable, the others as given."""
    c = client.containers.run("busybox", ["env"], environment=["Foo", "Other=one", "Blank="], detach=True)
    try:
        assert c.wait(timeout=30)["StatusCode"] == 0
        c.reload()
        env = c.attrs["Config"]["Env"]
        assert "Foo" in env and "Other=one" in env and "Blank=" in env
        out = c.logs().decode().splitlines()
        assert "Other=one" in out and "Blank=" in out and not any(line.startswith("Foo") for line in out)
    finally:
        c.remove(force=True)


def test_env_merge_with_the_image_as_dockerd_does(client: docker.DockerClient) -> None:
    """The user's entries first and as given, then the image's it did not name (dockerd 20.10 shows
    ['A=2', 'B=3', 'PATH'] for these)."""
    c = client.containers.create("busybox", ["env"], environment=["A=2", "B=3", "PATH"])
    try:
        assert c.attrs["Config"]["Env"] == ["A=2", "B=3", "PATH"]
    finally:
        c.remove(force=True)


def test_log_config_reports_what_was_asked(daemon: TestDaemon, client: docker.DockerClient) -> None:
    """The daemon's built-in rotation applies to every json-file log but is not written into each container's
    HostConfig: nothing asked gives docker's {"Type": "json-file", "Config": {}}."""
    status, body = daemon.api_json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]})
    assert status == 201, body
    try:
        _, info = daemon.api_json("GET", f"/containers/{body['Id']}/json")
        assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    finally:
        daemon.api("DELETE", f"/containers/{body['Id']}?force=1")
    lc = {"Type": "json-file", "Config": {"max-file": "100"}}
    status, body = daemon.api_json("POST", "/containers/create",
                                   {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"LogConfig": lc}})
    assert status == 201, body
    try:
        _, info = daemon.api_json("GET", f"/containers/{body['Id']}/json")
        assert info["HostConfig"]["LogConfig"] == lc
    finally:
        daemon.api("DELETE", f"/containers/{body['Id']}?force=1")


def test_unknown_log_driver_refused_with_dockers_message(daemon: TestDaemon) -> None:
    before = daemon.api_json("GET", "/containers/json?all=1")[1]
    status, body = daemon.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"LogConfig": {"Type": "asdf", "Config": {}}}})
    assert status == 400
    # docker 23+'s wording (dockerd 20.10 said 'error looking up logging plugin asdf: plugin "asdf" not found';
    # docker-py's test accepts both)
    assert body["message"] in ("logger: no log driver named 'asdf' is registered",
                               'error looking up logging plugin asdf: plugin "asdf" not found')
    assert daemon.api_json("GET", "/containers/json?all=1")[1] == before


def test_commit_running_container_with_pause(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "echo x > /f; sleep 300"], detach=True)
    try:
        status, body = daemon.api_json(
            "POST", f"/commit?container={c.id}&pause=true&comment=snap&author=me&repo=committed&tag=t1"
            "&changes=EXPOSE%208000&changes=CMD%20%5B%22bash%22%5D")
        assert status == 201, body
        img = client.api.inspect_image(body["Id"])
        assert img["Container"] == c.id and img["ContainerConfig"]["Image"] == "busybox"
        assert img["Comment"] == "snap" and img["Author"] == "me" and img["RepoTags"] == ["committed:t1"]
        assert "8000/tcp" in img["Config"]["ExposedPorts"] and img["Config"]["Cmd"] == ["bash"]
        assert img["Parent"] == client.images.get("busybox").id
        c.reload()
        assert c.attrs["State"]["Status"] == "running"  # paused for the commit only
    finally:
        c.remove(force=True)
        client.images.remove("committed:t1", force=True)


def test_commit_of_a_container_that_exits_meanwhile(daemon: TestDaemon, client: docker.DockerClient) -> None:
    """docker-py's commit tests start `touch /test` and commit at once: the container may stop between the
    check and the pause, or while paused; the commit must still succeed."""
    for _ in range(5):
        c = client.containers.run("busybox", ["touch", "/test"], detach=True)
        try:
            status, body = daemon.api_json("POST", f"/commit?container={c.id}&pause=true")
            assert status == 201, body
            daemon.api("DELETE", f"/images/{body['Id']}?force=1")
        finally:
            c.remove(force=True)


def test_runtime_as_docker_py_sends_it(client: docker.DockerClient) -> None:
    """(runc leaves the empty cgroup parent behind; the containers of the tests after it prune it.)"""
    c = client.api.create_container("busybox", ["echo", "test"], runtime="runc")
    try:
        info = client.api.inspect_container(c)
        assert info["HostConfig"]["Runtime"] == "runc" and "Runtime" not in info["Config"]
        client.api.start(c)
        assert client.api.wait(c, timeout=30)["StatusCode"] == 0
        assert client.api.logs(c) == b"test\n"
    finally:
        client.api.remove_container(c, force=True)


def test_diff_leaves_out_engine_files_and_mount_points(client: docker.DockerClient, tmp_path: object) -> None:
    """docker-py's test_diff: `touch /test` changes exactly [{'Path': '/test', 'Kind': 1}] — not /etc/hosts,
    /etc/hostname, /etc/resolv.conf (nor /etc for them). The mount points a volume or bind needed do show, as
    dockerd 20.10 shows them."""
    c = client.containers.run("busybox", ["touch", "/test"], detach=True)
    try:
        assert c.wait(timeout=30)["StatusCode"] == 0
        assert c.diff() == [{"Path": "/test", "Kind": 1}]
    finally:
        c.remove(force=True)
    c = client.containers.run("busybox", ["sh", "-c", "touch /etc/mine; echo v > /vol/f"], detach=True,
                              volumes=["/vol", f"{tmp_path}:/mnt/deep/bind"])
    try:
        assert c.wait(timeout=30)["StatusCode"] == 0
        assert sorted((ch["Path"], ch["Kind"]) for ch in c.diff()) == [
            ("/etc", 0), ("/etc/mine", 1), ("/mnt", 1), ("/mnt/deep", 1), ("/mnt/deep/bind", 1), ("/vol", 1)]
    finally:
        c.remove(force=True, v=True)


@pytest.fixture(scope="module")
def catbox(client: docker.DockerClient) -> object:
    c = client.containers.run("busybox", ["cat"], detach=True, stdin_open=True)
    yield c
    c.remove(force=True)


def test_exec_tty_output_framed_unless_start_asks_tty(client: docker.DockerClient, catbox: object) -> None:
    """docker frames an exec's output unless the *start* request says Tty, whatever the exec was created
    with: docker-py's exec_start(id) of a tty exec reads frames, and loses the first 8 bytes otherwise."""
    api = client.api
    cmd = ["sh", "-c", "echo hello out; sleep 0.2; echo hello err >&2"]
    ex = api.exec_create(catbox.id, cmd, tty=True)  # type: ignore[attr-defined]
    assert api.exec_start(ex) == b"hello out\r\nhello err\r\n"
    ex = api.exec_create(catbox.id, cmd, tty=True)  # type: ignore[attr-defined]
    assert api.exec_start(ex, demux=True) == (b"hello out\r\nhello err\r\n", None)
    ex = api.exec_create(catbox.id, cmd, tty=True)  # type: ignore[attr-defined]
    assert api.exec_start(ex, tty=True) == b"hello out\r\nhello err\r\n"  # raw, as asked
    ex = api.exec_create(catbox.id, ["printf", "yay"], tty=True)  # type: ignore[attr-defined]
    sock = api.exec_start(ex, socket=True)
    try:
        from docker.utils.socket import next_frame_header, read_exactly

        assert next_frame_header(sock) == (1, 3) and read_exactly(sock, 3) == b"yay"
    finally:
        sock.close()


def test_exec_start_socket_then_inspect_gives_the_exit_code(client: docker.DockerClient, catbox: object) -> None:
    """docker-py's exec_start(socket=True): the stream ends with the process, and exec_inspect then reports its
    exit code (not 0, not running), with and without a tty."""
    import time

    api = client.api
    for tty in (False, True):
        ex = api.exec_create(catbox.id, ["sh", "-c", "echo bye; exit 3"], tty=tty)  # type: ignore[attr-defined]
        sock = api.exec_start(ex, socket=True, tty=tty)
        try:
            raw = sock._sock  # docker-py hands out the socket.SocketIO of its unix-socket connection
            raw.settimeout(10)
            data = b""
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
        assert b"bye" in data
        deadline = time.monotonic() + 10
        info = api.exec_inspect(ex)
        while info["Running"] and time.monotonic() < deadline:
            time.sleep(0.05)
            info = api.exec_inspect(ex)
        assert (info["Running"], info["ExitCode"]) == (False, 3), (tty, info)


def test_exec_of_a_missing_binary_exits_126(client: docker.DockerClient, catbox: object) -> None:
    code, _ = catbox.exec_run("docker ps")  # type: ignore[attr-defined]
    assert code == 126


def _detaches_like_docker_py(sock: object, keys: list[bytes]) -> bool:
    """docker-py's own helper, to the letter: on a unix socket the first send may fail (closed: fine); if it
    does not, a second send and a read must give EOF (or dockerd's exec message), never a reset."""
    import time

    raw = getattr(sock, "_sock", sock)
    raw.settimeout(10)  # type: ignore[attr-defined]
    for k in keys:
        raw.sendall(k)  # type: ignore[attr-defined]
        time.sleep(0.5)
    try:
        raw.sendall(b"make sure the socket is closed\n")  # type: ignore[attr-defined]
    except OSError:
        return True
    raw.sendall(b"make sure the socket is closed\n")  # type: ignore[attr-defined]
    data = raw.recv(128)  # type: ignore[attr-defined]
    return data == b"" or data.startswith(b"exec attach failed: error on attach stdin: read escape sequence")


def test_exec_detach_closes_the_stream_at_once(client: docker.DockerClient) -> None:
    """docker-py's api_exec_test test_detach_with_default: after ctrl-p ctrl-q the exec's stream closes at once
    (it stayed open 5 s waiting for the exit, and the client's next read got a connection reset)."""
    api = client.api
    c = api.create_container("busybox", "cat", detach=True, stdin_open=True)
    try:
        api.start(c)
        ex = api.exec_create(c, "cat", stdin=True, tty=True, stdout=True)
        sock = api.exec_start(ex, tty=True, socket=True)
        try:
            assert _detaches_like_docker_py(sock, [b"\x10", b"\x11"])
        finally:
            sock.close()
    finally:
        api.remove_container(c, force=True)


def _detaches(sock: object, keys: list[bytes]) -> bool:
    """docker-py's assert_cat_socket_detached_with_keys: after the keys, the stream is closed (a send fails
    or a read gives EOF) instead of echoing what is sent."""
    import time

    raw = getattr(sock, "_sock", sock)
    raw.settimeout(10)  # type: ignore[attr-defined]
    for k in keys:
        raw.sendall(k)  # type: ignore[attr-defined]
        time.sleep(0.5)
    try:
        raw.sendall(b"make sure the socket is closed\n")  # type: ignore[attr-defined]
        data = raw.recv(128)  # type: ignore[attr-defined]
    except OSError:
        return True
    # dockerd (18.06+) may say why an exec's stream ended, as docker-py's helper allows
    return data == b"" or data.startswith(b"exec attach failed: error on attach stdin: read escape sequence")


def test_detach_keys_default_and_asked(client: docker.DockerClient) -> None:
    """With a terminal, ctrl-p ctrl-q detach an attached container and an attached exec when no keys were
    asked for; detachKeys / DetachKeys (docker-py takes them from config.json) replace them."""
    api = client.api
    c = api.create_container("busybox", "cat", detach=True, stdin_open=True, tty=True)
    try:
        api.start(c)
        sock = api.attach_socket(c, {"stdin": True, "stream": True})
        try:
            assert _detaches(sock, [b"\x10", b"\x11"])
        finally:
            sock.close()
        sock = api.attach_socket(c, {"stdin": True, "stream": True, "detachKeys": "ctrl-x"})
        try:
            assert _detaches(sock, [b"\x18"])
        finally:
            sock.close()
        assert api.inspect_container(c)["State"]["Running"]  # detaching stops nothing
        ex = api.exec_create(c, "cat", stdin=True, tty=True, stdout=True)
        sock = api.exec_start(ex, tty=True, socket=True)
        try:
            assert _detaches(sock, [b"\x10", b"\x11"])
        finally:
            sock.close()
        ex = api.exec_create(c, "cat", stdin=True, tty=True, stdout=True, detach_keys="ctrl-p")
        sock = api.exec_start(ex, tty=True, socket=True)
        try:
            assert _detaches(sock, [b"\x10"])
        finally:
            sock.close()
    finally:
        api.remove_container(c, force=True)


def test_log_file_exists_once_start_returns(client: docker.DockerClient) -> None:
    """docker-py's run() starts, follows the log, waits, removes the container and only then reads: a log
    that did not exist yet when the stream was opened came back empty."""
    import os

    for _ in range(5):
        c = client.api.create_container("busybox", ["echo", "hi"])
        try:
            client.api.start(c)
            assert os.path.exists(client.api.inspect_container(c)["LogPath"])
        finally:
            client.api.remove_container(c, force=True)
    for _ in range(5):
        assert client.containers.run("busybox", ["echo", "hello"], remove=True) == b"hello\n"



def test_name_filter_regex_with_and_without_slash(daemon: TestDaemon, client: docker.DockerClient) -> None:
    """`ps --filter name=^x$` finds x (docker matches the name with and without its '/'); values are ORed,
    keys ANDed; an unknown key is docker's 400."""
    import json
    from urllib.parse import quote

    a = client.api.create_container("busybox", "true", name="flt-web", labels={"tier": "front"})
    b = client.api.create_container("busybox", "true", name="flt-db", labels={"tier": "back"})
    try:
        def names(filters: dict) -> set[str]:
            status, body = daemon.api_json("GET", "/containers/json?all=1&filters=" + quote(json.dumps(filters)))
            assert status == 200, body
            return {n for c in body for n in c["Names"] if n.startswith("/flt-")}

        assert names({"name": ["^flt-web$"]}) == {"/flt-web"}
        assert names({"name": ["^/flt-web$"]}) == {"/flt-web"}
        assert names({"name": ["^flt-web$", "^flt-db$"]}) == {"/flt-web", "/flt-db"}  # ORed
        assert names({"name": ["^flt-"], "label": ["tier=back"]}) == {"/flt-db"}  # ANDed
        assert names({"name": ["flt-[("]}) == set()  # does not compile: matches nothing
        for path in ("/containers/json", "/images/json", "/networks", "/volumes"):
            status, body = daemon.api_json("GET", f"{path}?filters=" + quote(json.dumps({"bogus": ["x"]})))
            # docker 23+'s wording; dockerd 20.10 capitalised it ("Invalid filter 'bogus'")
            assert status == 400 and body["message"].lower() == "invalid filter 'bogus'", (path, body)
        r = daemon.cli("ps", "-a", "--filter", "name=^flt-db$", "--format", "{{.Names}}")
        assert r.stdout == "flt-db\n"
    finally:
        client.api.remove_container(a, force=True)
        client.api.remove_container(b, force=True)


@pytest.mark.dockyard_only("docker-py's attach(stream=False) loses output that arrives in the packet of the 101; "
                           "dockyard sends the 101 on its own, dockerd 20.10 does not (it fails there in each run)")
def test_attach_logs_without_stream(client: docker.DockerClient) -> None:
    """docker-py's test_attach_no_stream: attach(stream=False, logs=True) of a finished container gives its
    output (docker-py reads the 101 through a buffered reader, then the raw socket)."""
    for _ in range(1):  # a client-side race in docker-py (dockerd loses it too under load): one try
        c = client.api.create_container("busybox", "echo hello")
        try:
            client.api.start(c)
            client.api.wait(c, condition="not-running")
            assert client.api.attach(c, stream=False, logs=True) == b"hello\n"
        finally:
            client.api.remove_container(c, force=True)


def test_info_counts_every_image(daemon: TestDaemon, client: docker.DockerClient) -> None:
    """docker-py's test_images: the distinct IDs of /images/json?all=1 are info's Images (intermediate ones
    too, as a commit on top of busybox makes)."""
    c = client.containers.run("busybox", ["touch", "/x"], detach=True)
    try:
        c.wait(timeout=30)
        mid = c.commit()
        top = client.containers.run(mid.id, ["touch", "/y"], detach=True)
        top.wait(timeout=30)
        top.commit(repository="info-count", tag="t")
        distinct = {i["Id"] for i in client.api.images(all=True)}
        assert len(distinct) == client.info()["Images"]
        top.remove(force=True)
    finally:
        c.remove(force=True)
        client.images.remove("info-count:t", force=True)
