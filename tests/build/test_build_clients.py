"""The same builder driven by the docker CLI 28 (classic builder, tar upload) and docker-py."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile

import pytest
from ctx_files import write

from helpers.daemon import DOCKER, TestDaemon

pytestmark = pytest.mark.docker_cli


def docker_build(dy: TestDaemon, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(dy.env)
    env["DOCKER_BUILDKIT"] = "0"
    return subprocess.run([DOCKER, "build", *args], capture_output=True, text=True, env=env, input=input,
                          timeout=300)


def containers(dy: TestDaemon) -> list[dict]:
    status, body = dy.api_json("GET", "/containers/json?all=1")
    assert status == 200
    return body


def test_docker_cli_build_with_dockerignore_and_outside_dockerfile(dy: TestDaemon, ctxdir: str,
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    write(ctxdir, {"app/main.txt": "main\n", "app/debug.log": "noise\n", "secret.key": "k\n",
                   ".dockerignore": "**/*.log\nsecret.key\n"})
    other = str(tmp_path_factory.mktemp("df"))
    write(other, {"Build.df": "FROM busybox\nCOPY . /ctx\nRUN ls -R /ctx\n"})
    r = docker_build(dy, "-t", "dk/ignore", "-f", os.path.join(other, "Build.df"), ctxdir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Sending build context to Docker daemon" in r.stdout and "Successfully tagged dk/ignore:latest" in r.stdout
    ls = dy.cli("run", "--rm", "dk/ignore", "find", "/ctx", "-type", "f").stdout.split()
    assert sorted(ls) == ["/ctx/.dockerignore", "/ctx/app/main.txt"]


def test_docker_cli_failure_message_and_exit_code(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN false\n"})
    r = docker_build(dy, "--force-rm", "-t", "dk/fail", ctxdir)
    assert r.returncode == 1
    assert "The command '/bin/sh -c false' returned a non-zero code: 1" in r.stderr
    assert dy.docker("image", "inspect", "dk/fail").returncode == 1
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN true\nFOO bar\n"})
    r = docker_build(dy, ctxdir)
    assert r.returncode == 1
    assert "Error response from daemon: dockerfile parse error on line 3: unknown instruction: FOO" in r.stderr


def test_docker_cli_rm_false_keeps_intermediate_containers(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nENV A=1\nRUN echo kept > /k\n"})
    before = {c["Id"] for c in containers(dy)}
    r = docker_build(dy, "--rm=false", "--no-cache", "-t", "dk/keep", ctxdir)
    assert r.returncode == 0, r.stderr
    assert "Removing intermediate container" not in r.stdout and r.stdout.count(" ---> Running in ") == 2
    new = [c for c in containers(dy) if c["Id"] not in before]
    # as dockerd: the ENV step's container was only created, the RUN step's ran
    assert sorted(c["State"] for c in new) == ["created", "exited"]
    assert dy.docker("rm", *[c["Id"] for c in new]).returncode == 0


def test_docker_cli_stdin_dockerfile(dy: TestDaemon) -> None:
    r = docker_build(dy, "-t", "dk/stdin", "-", input="FROM busybox\nRUN echo from-stdin > /s\n")
    assert r.returncode == 0, r.stderr
    assert dy.cli("run", "--rm", "dk/stdin", "cat", "/s").stdout == "from-stdin\n"


def _gz_context(files: dict[str, str]) -> io.BytesIO:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, text in files.items():
            data = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return io.BytesIO(gzip.compress(raw.getvalue()))


def test_docker_py_build_options(dy: TestDaemon) -> None:
    client = dy.client()
    df = ("ARG GREETING=hello\nFROM busybox AS first\nARG GREETING\nARG WHO=nobody\n"
          "RUN echo \"$GREETING $WHO\" > /msg && cat /etc/hosts > /hosts && df -k /dev/shm | tail -1 > /shm\n"
          "FROM first AS second\nRUN echo second > /second\n")
    ctx = _gz_context({"Dockerfile": df})
    before = {c["Id"] for c in containers(dy)}
    img, logs = client.images.build(fileobj=ctx, custom_context=True, encoding="gzip", tag="py/build:1",
                                    rm=False, buildargs={"WHO": "world"}, labels={"built.by": "docker-py"},
                                    target="first", network_mode="none", extra_hosts={"myhost": "10.9.8.7"},
                                    shmsize=32 * 1024 * 1024, cache_from=["busybox:latest"])
    text = "".join(chunk.get("stream", "") for chunk in logs)
    assert "Successfully built" in text and "second" not in text
    assert img.labels == {"built.by": "docker-py"}
    out = dy.cli("run", "--rm", "py/build:1", "sh", "-c", "cat /msg /hosts /shm").stdout
    assert out.startswith("hello world\n")
    assert "10.9.8.7\tmyhost" in out or "10.9.8.7 myhost" in out
    assert " 32768 " in out  # shm size in 1k blocks
    left = [c for c in containers(dy) if c["Id"] not in before]
    assert left, "rm=False keeps the intermediate containers"
    for c in left:
        client.containers.get(c["Id"]).remove(force=True)
    client.images.remove("py/build:1")


def test_docker_py_build_error_raises(dy: TestDaemon) -> None:
    import docker

    client = dy.client()
    ctx = _gz_context({"Dockerfile": "FROM busybox\nRUN exit 7\n"})
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(fileobj=ctx, custom_context=True, encoding="gzip", forcerm=True)
    assert "The command '/bin/sh -c exit 7' returned a non-zero code: 7" in str(e.value)


def test_docker_cli_rebuild_sees_changed_and_removed_files(dy: TestDaemon, ctxdir: str) -> None:
    """Uploads of the same build reuse the earlier unpacked copy: what changed or went must show."""
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY . /ctx\n", "same.txt": "same\n", "edit.txt": "aaaa\n",
                   "gone.txt": "gone\n"})
    r = docker_build(dy, "-t", "dk/reuse", ctxdir)
    assert r.returncode == 0, r.stderr
    r = docker_build(dy, "-t", "dk/reuse", ctxdir)
    assert r.stdout.count("Using cache") == 1
    write(ctxdir, {"edit.txt": "bbbb\n"})  # same size, new content
    os.unlink(os.path.join(ctxdir, "gone.txt"))
    os.chmod(os.path.join(ctxdir, "same.txt"), 0o600)
    r = docker_build(dy, "-t", "dk/reuse", ctxdir)
    assert r.returncode == 0 and "Using cache" not in r.stdout, r.stdout
    out = dy.cli("run", "--rm", "dk/reuse", "sh", "-c", "cat /ctx/edit.txt; ls /ctx; stat -c %a /ctx/same.txt").stdout
    assert out == "bbbb\nDockerfile\nedit.txt\nsame.txt\n600\n"
