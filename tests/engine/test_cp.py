"""docker cp against the daemon: both directions, running and stopped containers, tar streams, escapes refused,
the official docker CLI and docker-py."""

from __future__ import annotations

import io
import os
import pty
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from helpers.daemon import DOCKER, DOCKYARD, TestDaemon, mounts_under
from helpers.tarballs import tar_bytes


@pytest.fixture(scope="module")
def box(daemon: TestDaemon, busybox_image: str) -> Iterator[str]:
    r = daemon.docker("run", "-d", "--name", "cpbox", busybox_image, "sh", "-c",
                      "mkdir -p /data/sub && echo hello > /data/sub/f && echo top > /data/t && sleep 300")
    assert r.returncode == 0, r.stderr
    for _ in range(100):
        if daemon.docker("exec", "cpbox", "cat", "/data/t").stdout == "top\n":
            break
    yield "cpbox"
    daemon.docker("rm", "-f", "cpbox")


@pytest.fixture(scope="module")
def stopped(daemon: TestDaemon, busybox_image: str) -> Iterator[str]:
    r = daemon.docker("run", "--name", "cpstopped", busybox_image, "sh", "-c",
                      "mkdir -p /data/sub && echo hello > /data/sub/f && echo top > /data/t")
    assert r.returncode == 0, r.stderr
    yield "cpstopped"
    daemon.docker("rm", "-f", "cpstopped")


@pytest.fixture
def work() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dycp", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _tar(*entries: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    return tar_bytes(*entries)


@pytest.mark.parametrize("tool", ["cli", "docker"])
@pytest.mark.parametrize("which", ["box", "stopped"])
def test_copy_out_file_and_dir(daemon: TestDaemon, box: str, stopped: str, work: str, tool: str,
                               which: str) -> None:
    name = box if which == "box" else stopped
    run = daemon.cli if tool == "cli" else daemon.docker
    r = run("cp", f"{name}:/data/t", f"{work}/t")
    assert r.returncode == 0, r.stderr
    assert _read(f"{work}/t") == "top\n"
    r = run("cp", f"{name}:/data", f"{work}/copy")  # new name: the directory takes it
    assert r.returncode == 0, r.stderr
    assert _read(f"{work}/copy/sub/f") == "hello\n"
    os.makedirs(f"{work}/into")
    assert run("cp", f"{name}:/data", f"{work}/into").returncode == 0  # existing dir: copied inside it
    assert _read(f"{work}/into/data/sub/f") == "hello\n"
    os.makedirs(f"{work}/contents")
    assert run("cp", f"{name}:/data/.", f"{work}/contents").returncode == 0  # "/." copies the contents
    assert sorted(os.listdir(f"{work}/contents")) == ["sub", "t"]
    if which == "stopped":
        cid = daemon.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
        assert cid and not [m for m in mounts_under(daemon.data_root) if cid in m]  # unmounted after the copy


@pytest.mark.parametrize("tool", ["cli", "docker"])
def test_copy_in_running_and_created(daemon: TestDaemon, box: str, busybox_image: str, work: str,
                                     tool: str) -> None:
    run = daemon.cli if tool == "cli" else daemon.docker
    os.makedirs(f"{work}/dir/inner")
    with open(f"{work}/dir/inner/x", "w") as f:
        f.write("x-content\n")
    with open(f"{work}/file", "w") as f:
        f.write("file-content\n")
    r = run("cp", f"{work}/file", f"{box}:/tmp/renamed-{tool}")
    assert r.returncode == 0, r.stderr
    assert run("cp", f"{work}/dir", f"{box}:/tmp/").returncode == 0
    r = daemon.docker("exec", box, "sh", "-c", f"cat /tmp/renamed-{tool} /tmp/dir/inner/x")
    assert r.stdout == "file-content\nx-content\n", r.stderr
    name = f"cpcreated-{tool}"
    r = daemon.docker("create", "--name", name, busybox_image, "cat", "/etc/greeting")
    assert r.returncode == 0, r.stderr
    try:
        with open(f"{work}/greeting", "w") as f:
            f.write("hi from the host\n")
        r = run("cp", f"{work}/greeting", f"{name}:/etc/greeting")
        assert r.returncode == 0, r.stderr
        r = daemon.docker("start", "-a", name)
        assert (r.returncode, r.stdout) == (0, "hi from the host\n"), r.stderr
    finally:
        daemon.docker("rm", "-f", name)


def test_tar_streams_both_ways(daemon: TestDaemon, box: str) -> None:
    out = subprocess.run([DOCKYARD, "cp", f"{box}:/data", "-"], capture_output=True, env=daemon.env)
    assert out.returncode == 0, out.stderr
    names = tarfile.open(fileobj=io.BytesIO(out.stdout)).getnames()
    assert {"data", "data/sub", "data/sub/f", "data/t"} <= set(names)
    body = _tar(("streamed/a", b"via stdin\n"))
    r = subprocess.run([DOCKYARD, "cp", "-", f"{box}:/tmp"], input=body, capture_output=True, env=daemon.env)
    assert r.returncode == 0, r.stderr
    assert daemon.docker("exec", box, "cat", "/tmp/streamed/a").stdout == "via stdin\n"
    r = subprocess.run([DOCKYARD, "cp", "-", f"{box}:/data/t"], input=body, capture_output=True, env=daemon.env)
    assert r.returncode == 1 and b'destination "cpbox:/data/t" must be a directory' in r.stderr


def test_errors_match_docker(daemon: TestDaemon, box: str, work: str) -> None:
    for run in (daemon.cli, daemon.docker):
        r = run("cp", f"{box}:/nope", work)
        assert (r.returncode, r.stderr) == (1, f"Error response from daemon: Could not find the file /nope in "
                                               f"container {box}\n")
        r = run("cp", "nosuch:/etc", work)
        assert (r.returncode, r.stderr) == (1, "Error response from daemon: No such container: nosuch\n")
        r = run("cp", "a", "b")
        assert (r.returncode, r.stderr) == (1, "must specify at least one container source\n")


def test_progress_line_on_a_terminal(daemon: TestDaemon, box: str, work: str) -> None:
    lines = []
    for exe, dest in ((DOCKYARD, f"{work}/p1"), (DOCKER, f"{work}/p2")):
        master, slave = pty.openpty()
        try:
            r = subprocess.run([exe, "cp", f"{box}:/data/t", dest], stdout=slave, stderr=subprocess.PIPE,
                               env=daemon.env, text=True, timeout=60)
        finally:
            os.close(slave)
            os.close(master)
        assert r.returncode == 0
        lines.append(r.stderr.replace(dest, "DEST"))
    assert lines[0] == lines[1] == "Successfully copied 2.05kB to DEST\n"


def _host_secret(work: str, name: str) -> str:
    """A host directory holding a file no copy may reach: what the escape tests aim at."""
    host_dir = os.path.join(work, name)
    os.makedirs(host_dir)
    with open(f"{host_dir}/secret", "w") as f:
        f.write("host secret\n")
    return host_dir


def test_escapes_are_refused_and_host_untouched(daemon: TestDaemon, box: str, work: str) -> None:
    host_dir = _host_secret(work, "hostdir")
    # a symlink in the container naming the host directory resolves inside the container (which lacks it)
    assert daemon.docker("exec", box, "ln", "-s", host_dir, "/tmp/out").returncode == 0
    assert daemon.docker("exec", box, "ln", "-s", "../../../../../../" + host_dir, "/tmp/relout").returncode == 0
    for link in ("/tmp/out", "/tmp/relout"):
        r = daemon.cli("cp", f"{box}:{link}/secret", f"{work}/stolen")
        assert r.returncode == 1 and "Could not find the file" in r.stderr
        assert not os.path.exists(f"{work}/stolen")
    with open(f"{work}/payload", "w") as f:
        f.write("payload\n")
    r = daemon.cli("cp", f"{work}/payload", f"{box}:/tmp/out/secret")
    assert r.returncode == 1
    # ".." cannot leave the container's root: docker cleans it away, so this is the container's passwd
    r = daemon.cli("cp", f"{box}:../../etc/passwd", f"{work}/pw")
    assert r.returncode == 0, r.stderr
    assert _read(f"{work}/pw") == daemon.docker("exec", box, "cat", "/etc/passwd").stdout
    assert _read(f"{work}/pw") != _read("/etc/passwd")
    assert sorted(os.listdir(host_dir)) == ["secret"]
    assert _read(f"{host_dir}/secret") == "host secret\n"
    daemon.docker("exec", box, "rm", "-f", "/tmp/out", "/tmp/relout")


@pytest.mark.dockyard_only("dockyard refuses an escaping archive 400 'refusing …' before writing anything, absolute "
                           "names and symlinked members too; dockerd 20.10 answers 500 'Error processing tar file' "
                           "and treats absolute names and symlinks its own way")
def test_escaping_archives_are_refused_and_write_nothing(daemon: TestDaemon, box: str, work: str) -> None:
    host_dir = _host_secret(work, "hostdir2")
    assert daemon.docker("exec", box, "ln", "-s", host_dir, "/tmp/out").returncode == 0
    # archives: "..", absolute names, writing through a symlink (the archive's own or the container's)
    evil = tarfile.TarInfo("evil")
    evil.type, evil.linkname = tarfile.SYMTYPE, host_dir
    for body in (_tar(("first", b"1"), ("../../escape", b"x")),
                 _tar(("first", b"1"), (f"{host_dir}/secret", b"x")),
                 _tar(("first", b"1"), evil, ("evil/secret", b"x")),
                 _tar(("first", b"1"), ("out/secret", b"x"))):
        status, _, resp = daemon.api("PUT", f"/containers/{box}/archive?path=/tmp", body,
                                     headers={"Content-Type": "application/x-tar"})
        assert status == 400 and b"refusing" in resp, resp
        assert daemon.docker("exec", box, "ls", "/tmp/first").returncode == 1  # nothing was written
    assert sorted(os.listdir(host_dir)) == ["secret"]
    assert _read(f"{host_dir}/secret") == "host secret\n"
    daemon.docker("exec", box, "rm", "-f", "/tmp/out", "/tmp/relout")


def test_head_stat_and_docker_py(daemon: TestDaemon, box: str) -> None:
    client = daemon.client()
    try:
        c = client.containers.get(box)
        assert c.put_archive("/tmp", _tar(("pyfile", b"from docker-py\n"))) is True
        assert daemon.docker("exec", box, "cat", "/tmp/pyfile").stdout == "from docker-py\n"
        chunks, st = c.get_archive("/tmp/pyfile")
        data = b"".join(chunks)
        assert st["name"] == "pyfile" and st["size"] == 15 and st["linkTarget"] == ""
        member = tarfile.open(fileobj=io.BytesIO(data)).extractfile("pyfile")
        assert member is not None and member.read() == b"from docker-py\n"
        _, st = c.get_archive("/bin/sh")
        assert st["mode"] & (1 << 27) and st["linkTarget"] == "/bin/busybox"
        _, st = c.get_archive("/tmp")
        assert st["mode"] & (1 << 31)
        import docker.errors

        with pytest.raises(docker.errors.NotFound):
            c.get_archive("/nope")
    finally:
        client.close()
    status, headers, _ = daemon.api("HEAD", f"/containers/{box}/archive?path=/data/t")
    assert status == 200 and "x-docker-container-path-stat" in headers
    status, _, _ = daemon.api("PUT", f"/containers/{box}/archive?path=/data/t", _tar(("x", b"")))
    assert status == (500 if daemon.reference else 400)  # a bad destination is the client's error; 20.10 says 500


def test_bind_mounts_archive_uid_and_follow_link(daemon: TestDaemon, busybox_image: str, work: str) -> None:
    """Binds resolve to their host source like docker; -a owns files by the container's user; -L follows."""
    vol = os.path.join(work, "vol")
    os.makedirs(vol)
    r = daemon.docker("run", "-d", "--name", "cpuser", "--user", "65534:65534", "-v", f"{vol}:/mnt",
                      busybox_image, "sleep", "300")
    assert r.returncode == 0, r.stderr
    try:
        with open(f"{work}/f", "w") as f:
            f.write("to the volume\n")
        assert daemon.cli("cp", f"{work}/f", "cpuser:/mnt/in-vol").returncode == 0
        assert _read(f"{vol}/in-vol") == "to the volume\n"
        with open(f"{vol}/from-host", "w") as f:
            f.write("host side\n")
        assert daemon.cli("cp", "cpuser:/mnt/from-host", f"{work}/back").returncode == 0
        assert _read(f"{work}/back") == "host side\n"
        if daemon.reference:
            pytest.skip("dockerd 20.10's cp -a resolves the container user 65534:65534 with getent, which the "
                        "busybox stand-in's passwd lacks")
        assert daemon.cli("cp", "-a", f"{work}/f", "cpuser:/tmp/owned").returncode == 0
        assert daemon.cli("cp", f"{work}/f", "cpuser:/tmp/kept").returncode == 0
        r = daemon.docker("exec", "cpuser", "stat", "-c", "%u:%g", "/tmp/owned", "/tmp/kept")
        assert r.stdout == f"65534:65534\n{os.getuid()}:{os.getgid()}\n", r.stderr
        assert daemon.cli("cp", "cpuser:/bin/sh", f"{work}/link").returncode == 0
        assert os.path.islink(f"{work}/link")
        assert daemon.cli("cp", "-L", "cpuser:/bin/sh", f"{work}/followed").returncode == 0
        assert os.path.isfile(f"{work}/followed") and not os.path.islink(f"{work}/followed")
    finally:
        daemon.docker("rm", "-f", "cpuser")


def test_generated_etc_files_and_binds_are_not_replaced(daemon: TestDaemon, box: str, work: str) -> None:
    """/etc/hostname reads as the container sees it; an archive cannot replace a mounted file."""
    r = subprocess.run([DOCKYARD, "cp", f"{box}:/etc/hostname", "-"], capture_output=True, env=daemon.env)
    assert r.returncode == 0, r.stderr
    member = tarfile.open(fileobj=io.BytesIO(r.stdout)).extractfile("hostname")
    hostname = daemon.docker("exec", box, "cat", "/etc/hostname").stdout
    assert member is not None and member.read().decode() == hostname and hostname.strip()
    status, _, resp = daemon.api("PUT", f"/containers/{box}/archive?path=/etc", _tar(("hostname", b"evil\n")))
    assert status == (500 if daemon.reference else 400) and b"busy" in resp  # dockerd 20.10 says 500
    assert daemon.docker("exec", box, "cat", "/etc/hostname").stdout == hostname
