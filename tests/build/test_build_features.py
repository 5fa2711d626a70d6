"""Dockerfile features end to end (dockyard CLI): parallel stages, heredocs, ONBUILD, build args and their scope,
RUN --mount (cache, bind, tmpfs, secret), ADD (archives, loopback URLs with --checksum), COPY --chown/--chmod,
the effect of each instruction on a running container, and the build cache in df and prune."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator

import pytest
from ctx_files import write

from helpers.daemon import TestDaemon


def ok_build(dy: TestDaemon, root: str, *args: str) -> str:
    r = dy.cli("build", *args, root)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def run_out(dy: TestDaemon, *args: str) -> str:
    r = dy.cli("run", "--rm", *args)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def test_independent_stages_build_in_parallel(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox AS a\nRUN sleep 3 && echo a > /a\n"
                                 "FROM busybox AS b\nRUN sleep 3 && echo b > /b\n"
                                 "FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n"})
    t0 = time.monotonic()
    out = ok_build(dy, ctxdir, "-t", "ft/parallel")
    took = time.monotonic() - t0
    assert out.index("Step 1/7") < out.index("Step 3/7") < out.index("Step 5/7")  # the stream stays in order
    assert took < 5.5, f"two 3 s stages took {took:.1f} s"
    assert run_out(dy, "ft/parallel", "cat", "/a", "/b") == "a\nb\n"


def test_heredocs_run_and_copy(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nARG NAME=world\nRUN <<EOF\necho one > /one\necho two >> /one\nEOF\n"
                                 "RUN <<A cat > /a && <<B cat > /b\nfirst\nA\nsecond\nB\n"
                                 "COPY <<EOF /greeting\nhello $NAME\nEOF\n"
                                 "COPY <<'EOF' /literal\nhello $NAME\nEOF\n"})
    ok_build(dy, ctxdir, "-t", "ft/heredoc")
    assert run_out(dy, "ft/heredoc", "cat", "/one", "/a", "/b", "/greeting", "/literal") == \
        "one\ntwo\nfirst\nsecond\nhello world\nhello $NAME\n"


def test_onbuild_triggers_run_in_child(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /trig\nONBUILD COPY marker /marker\n",
                   "marker": "from child context\n"})
    ok_build(dy, ctxdir, "-t", "ft/parent")
    cfg = dy.api_json("GET", "/images/ft/parent/json")[1]["Config"]
    assert cfg["OnBuild"] == ["RUN echo triggered > /trig", "COPY marker /marker"]
    write(ctxdir, {"Dockerfile": "FROM ft/parent\nRUN cat /trig\n"})
    out = ok_build(dy, ctxdir, "-t", "ft/child")
    assert "# Executing 2 build triggers" in out and "triggered" in out
    assert run_out(dy, "ft/child", "cat", "/marker") == "from child context\n"
    assert not dy.api_json("GET", "/images/ft/child/json")[1]["Config"].get("OnBuild")


def test_build_args_scope_and_defaults(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "ARG BASE=busybox\nARG GLOBAL=g\nFROM ${BASE}\n"
                                 "RUN echo \"global-in-stage=[$GLOBAL]\"\nARG GLOBAL\nARG LOCAL=dflt\n"
                                 "ENV FROM_ARG=$LOCAL\nRUN echo \"global=$GLOBAL local=$LOCAL\" > /args\n"})
    out = ok_build(dy, ctxdir, "-t", "ft/args", "--build-arg", "LOCAL=given", "--build-arg", "UNUSED=x")
    assert "global-in-stage=[]" in out
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in out
    assert run_out(dy, "ft/args", "cat", "/args") == "global=g local=given\n"
    env = dy.api_json("GET", "/images/ft/args/json")[1]["Config"]["Env"]
    assert "FROM_ARG=given" in env and not any(e.startswith("LOCAL=") for e in env)
    hist = dy.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", "ft/args").stdout
    assert "|2 GLOBAL=g LOCAL=given /bin/sh -c echo" in hist


def test_instruction_effects_in_container(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group\nWORKDIR /srv/app\n"
                                 "COPY --chown=app:app --chmod=640 f.txt ./\nUSER app\nENV GREETING=hi\n"
                                 "SHELL [\"/bin/sh\", \"-c\"]\nHEALTHCHECK --interval=5s --retries=2 CMD true\n"
                                 "CMD id -u && pwd && stat -c '%u %a' f.txt && echo $GREETING\n",
                   "f.txt": "x\n"})
    ok_build(dy, ctxdir, "-t", "ft/effects")
    assert run_out(dy, "ft/effects") == "1234\n/srv/app\n1234 640\nhi\n"
    hc = dy.api_json("GET", "/images/ft/effects/json")[1]["Config"]["Healthcheck"]
    assert hc == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}


def test_run_mounts(dy: TestDaemon, ctxdir: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    secret = tmp_path_factory.mktemp("sec") / "token"
    secret.write_text("s3cr3t")
    write(ctxdir, {"Dockerfile": "FROM busybox\n"
                                 "RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log\n"
                                 "RUN --mount=type=bind,source=data,target=/mnt cat /mnt/file > /from-bind\n"
                                 "RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && "
                                 "grep -q ' /scratch tmpfs' /proc/mounts\n"
                                 "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen-secret-length && "
                                 "wc -c < /run/secrets/tok > /seen-secret-length\n",
                   "data/file": "bound\n"})
    out = ok_build(dy, ctxdir, "-t", "ft/mounts", "--secret", f"id=tok,src={secret}")
    assert "\n1\n" in out
    assert run_out(dy, "ft/mounts", "cat", "/from-bind", "/seen-secret-length") == "bound\n6\n"
    assert run_out(dy, "ft/mounts", "sh", "-c", "test ! -e /scratch && test ! -e /run/secrets && "
                                                "test ! -e /cache && echo clean") == "clean\n"
    ok_build(dy, ctxdir, "--no-cache", "-t", "ft/mounts", "--secret", f"id=tok,src={secret}")
    r = dy.cli("build", "--no-cache", ctxdir, "--secret", f"id=tok,src={secret}")
    assert "\n3\n" in r.stdout  # the cache mount kept its content across builds


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b"downloaded content\n"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_add_archive_and_url(dy: TestDaemon, ctxdir: str, http_url: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"inside the archive\n"
        ti = tarfile.TarInfo("pkg/readme")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    good = "sha256:" + hashlib.sha256(_Handler.payload).hexdigest()
    write(ctxdir, {"pkg.tar.gz": buf.getvalue(),
                   "Dockerfile": f"FROM busybox\nADD pkg.tar.gz /opt/\nADD --checksum={good} {http_url}/dl.txt /dl/\n"})
    ok_build(dy, ctxdir, "-t", "ft/add")
    assert run_out(dy, "ft/add", "sh", "-c", "cat /opt/pkg/readme /dl/dl.txt; stat -c %a /dl/dl.txt") == \
        "inside the archive\ndownloaded content\n600\n"
    write(ctxdir, {"Dockerfile": f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {http_url}/dl.txt /dl/\n"})
    r = dy.cli("build", ctxdir)
    assert r.returncode == 1 and "digest mismatch" in r.stderr


def test_copy_rules_and_errors(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"a.txt": "a\n", "b.txt": "b\n", "dir/sub/c.txt": "c\n",
                   "Dockerfile": "FROM busybox\nCOPY *.txt /multi/\nCOPY dir /contents\nCOPY a.txt /renamed\n"
                                 "COPY --exclude=*.txt dir /excluded\n"})
    ok_build(dy, ctxdir, "-t", "ft/copy")
    out = run_out(dy, "ft/copy", "sh", "-c", "cat /multi/a.txt /multi/b.txt /contents/sub/c.txt /renamed; "
                                            "find /excluded -type f | wc -l; stat -c %a /tmp")
    assert out == "a\nb\nc\na\n0\n1777\n"
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY a.txt b.txt /notadir\n"})
    r = dy.cli("build", ctxdir)
    assert r.returncode == 1 and "When using COPY with more than one source file, the destination must be a " \
                                 "directory and end with a /" in r.stderr
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY missing.txt /\n"})
    r = dy.cli("build", ctxdir)
    assert r.returncode == 1 and "missing.txt" in r.stderr and "file does not exist" in r.stderr


def test_build_cache_in_df_and_prune(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN head -c 100000 /dev/zero > /blob\n"})
    image = ok_build(dy, ctxdir, "-q").strip()
    chain = [i for i in dy.cli("history", "-q", image).stdout.split() if i != "<missing>"]
    busybox = dy.api_json("GET", "/images/busybox/json")[1]["Id"]
    df = dy.api_json("GET", "/system/df")[1]
    assert any(r["Description"].startswith("/bin/sh -c head") for r in df["BuildCache"])
    dy.cli("rmi", image)
    r = dy.cli("builder", "prune", "-af")
    assert r.returncode == 0 and "Total:" in r.stdout
    df = dy.api_json("GET", "/system/df")[1]
    assert df["BuildCache"] == []
    left = [i for i in chain if dy.api_json("GET", f"/images/{i}/json")[0] == 200]
    assert [dy.api_json("GET", f"/images/{i}/json")[1]["Id"] for i in left] == [busybox], \
        "pruning the cache removes the images only the cache held"


def _tar_of(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, text in files.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_build_cancel_stops_the_running_step(dy: TestDaemon) -> None:
    import json

    from helpers.daemon import _UnixHTTPConnection

    before = {c["Id"] for c in dy.api_json("GET", "/containers/json?all=1")[1]}
    conn = _UnixHTTPConnection(dy.socket, timeout=60)
    body = _tar_of({"Dockerfile": "FROM busybox\nRUN echo started && sleep 60\n"})
    conn.request("POST", "/v1.47/build?buildid=cancel-me&t=ft/cancelled", body=body,
                 headers={"Content-Type": "application/x-tar"})
    resp = conn.getresponse()
    assert resp.status == 200
    seen = b""
    while b"started" not in seen:
        line = resp.readline()
        assert line, seen
        seen += line
    t0 = time.monotonic()
    status, _, _ = dy.api("POST", "/build/cancel?id=cancel-me")
    assert status == 200
    rest = resp.read()
    conn.close()
    assert time.monotonic() - t0 < 15
    last = json.loads(rest.strip().splitlines()[-1])
    assert last.get("error") == "context canceled"
    assert dy.api_json("GET", "/images/ft/cancelled/json")[0] == 404
    assert {c["Id"] for c in dy.api_json("GET", "/containers/json?all=1")[1]} == before
    assert dy.api("POST", "/build/cancel?id=cancel-me")[0] == 404


class _FileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(directory served, its http://127.0.0.1:PORT URL)."""
    import functools

    root = str(tmp_path_factory.mktemp("www"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_FileHandler, directory=root))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_remote_tar_and_git_contexts(dy: TestDaemon, file_server: tuple[str, str]) -> None:
    import subprocess

    root, url = file_server
    with open(os.path.join(root, "ctx.tar"), "wb") as f:
        f.write(_tar_of({"Dockerfile": "FROM busybox\nCOPY msg /msg\n", "msg": "remote tar\n"}))
    r = dy.cli("build", "-t", "ft/remote-tar", f"{url}/ctx.tar")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert run_out(dy, "ft/remote-tar", "cat", "/msg") == "remote tar\n"
    work = os.path.join(root, "work")
    os.makedirs(os.path.join(work, "sub"))
    write(work, {"sub/Dockerfile": "FROM busybox\nCOPY note /note\n", "sub/note": "from git\n"})
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "ctx"]):
        subprocess.run([*git, *cmd], cwd=work, check=True, capture_output=True)
    subprocess.run(["git", "clone", "-q", "--bare", work, os.path.join(root, "repo.git")], check=True)
    subprocess.run(["git", "update-server-info"], cwd=os.path.join(root, "repo.git"), check=True)
    r = dy.cli("build", "-t", "ft/remote-git", f"{url}/repo.git#main:sub")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert run_out(dy, "ft/remote-git", "cat", "/note") == "from git\n"


def test_squash_needs_experimental(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\n"})
    r = dy.cli("build", "--squash", ctxdir)
    assert r.returncode == 1 and "squash is only supported with experimental mode" in r.stderr


def test_run_reaches_a_container_on_a_user_network(dy: TestDaemon, ctxdir: str) -> None:
    net = "ftnet" + os.urandom(3).hex()
    assert dy.cli("network", "create", net).returncode == 0
    try:
        r = dy.cli("run", "-d", "--name", f"{net}-web", "--network", net, "busybox", "sh", "-c",
                   "mkdir /www && echo served-to-build > /www/index.html && exec httpd -f -p 80 -h /www")
        assert r.returncode == 0, r.stderr
        write(ctxdir, {"Dockerfile": f"FROM busybox\nRUN for i in $(seq 1 50); do "
                                     f"wget -q -O /got http://{net}-web/ && break; sleep 0.2; done; cat /got\n"})
        out = ok_build(dy, ctxdir, "--network", net, "-t", "ft/net")
        assert "served-to-build" in out
        write(ctxdir, {"Dockerfile": "FROM busybox\nRUN --network=none ip -o link | grep -v ' lo' | wc -l\n"})
        out = ok_build(dy, ctxdir, "--no-cache")
        assert "\n0\n" in out  # only loopback with RUN --network=none
    finally:
        dy.cli("rm", "-f", f"{net}-web")
        dy.cli("network", "rm", net)
