"""Spec features seen from inside the container: privileged caps, --init, binds, read-only rootfs, OOM kill.

Output comes back through a bind-mounted host directory, so these tests need only the container lifecycle.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import docker
import pytest

from helpers import cgroupfs
from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


@pytest.fixture()
def outdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="dyo", dir="/tmp")
    os.chmod(d, 0o777)
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def _run(client: docker.DockerClient, outdir: str, script: str, **kw: object) -> tuple[int, str]:
    kw.setdefault("volumes", {outdir: {"bind": "/out", "mode": "rw"}})
    c = client.containers.run("busybox", ["sh", "-c", script], detach=True, **kw)
    try:
        code = c.wait(timeout=30)["StatusCode"]
        c.reload()
        path = os.path.join(outdir, "o")
        text = open(path).read() if os.path.exists(path) else ""
        return code, text
    finally:
        c.remove(force=True)


def _all_caps_hex() -> str:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return f"{(1 << (int(f.read()) + 1)) - 1:016x}"


def _host_bounding_hex() -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return line.split()[1]
    raise AssertionError("no CapBnd")


def test_privileged_gets_host_bounding_set(daemon: TestDaemon, client: docker.DockerClient, outdir: str) -> None:
    if daemon.reference and _host_bounding_hex() != _all_caps_hex():
        pytest.skip("host reason: this host's bounding set lacks capabilities; dockerd gives a privileged "
                    "container every capability the kernel knows, which runc then cannot apply")
    code, text = _run(client, outdir, "{ grep CapEff /proc/self/status; ls /dev; } > /out/o", privileged=True)
    assert code == 0
    assert text.split()[1] == _host_bounding_hex()
    host_nodes = {n for n in ("loop-control", "kmsg", "fuse", "tty0") if os.path.exists(f"/dev/{n}")}
    assert host_nodes <= set(text.split()[2:])  # --privileged sees the host's devices


def test_default_caps_are_dockers(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "grep CapEff /proc/self/status > /out/o")
    assert code == 0
    assert text.split()[1] == "00000000a80425fb"  # docker's default 14 capabilities


def test_cap_drop_all(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "grep CapEff /proc/self/status > /out/o", cap_drop=["ALL"])
    assert code == 0 and text.split()[1] == "0000000000000000"


def test_init_is_pid1(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "cat /proc/1/cmdline | tr '\\0' ' ' > /out/o", init=True)
    assert code == 0
    assert text.startswith("/sbin/docker-init -- sh -c")


def test_bind_mount_rw_and_ro(client: docker.DockerClient, outdir: str) -> None:
    ro = tempfile.mkdtemp(prefix="dyr", dir="/tmp")
    try:
        with open(os.path.join(ro, "f"), "w") as f:
            f.write("host\n")
        code, text = _run(client, outdir, "cat /ro/f > /out/o; touch /ro/x 2>>/out/o; echo rc=$? >> /out/o",
                          volumes={outdir: {"bind": "/out", "mode": "rw"}, ro: {"bind": "/ro", "mode": "ro"}})
        assert code == 0
        assert text.startswith("host\n") and "Read-only file system" in text and text.endswith("rc=1\n")
        assert not os.path.exists(os.path.join(ro, "x"))
    finally:
        for n in os.listdir(ro):
            os.unlink(os.path.join(ro, n))
        os.rmdir(ro)


def test_bind_source_created_like_docker(daemon: TestDaemon, client: docker.DockerClient, outdir: str) -> None:
    missing = os.path.join(outdir, "made")
    code, _ = _run(client, outdir, "touch /m/x", volumes={outdir: {"bind": "/out", "mode": "rw"},
                                                           missing: {"bind": "/m", "mode": "rw"}})
    assert code == 0 and os.path.exists(os.path.join(missing, "x"))
    os.unlink(os.path.join(missing, "x"))
    os.rmdir(missing)


def test_read_only_rootfs(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "touch /etc/x 2>/out/o; echo rc=$? >> /out/o; touch /tmp/y 2>>/out/o; "
                                      "touch /dev/shm/ok && echo shm-ok >> /out/o", read_only=True)
    assert code == 0
    assert "Read-only file system" in text and "rc=1" in text and "shm-ok" in text


def test_oom_killed(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "x=a; while :; do x=$x$x$x$x; done"], detach=True,
                              mem_limit="8m", memswap_limit="8m")
    try:
        assert c.wait(timeout=60)["StatusCode"] == 137
        c.reload()
        assert c.attrs["State"]["OOMKilled"] is True and c.attrs["State"]["ExitCode"] == 137
    finally:
        c.remove(force=True)


def test_env_user_workdir_hostname(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "{ id -u; id -g; pwd; hostname; echo $FOO; echo $PATH; } > /out/o",
                      environment={"FOO": "bar"}, user="65534:65534", working_dir="/tmp", hostname="hn")
    assert code == 0
    assert text.split("\n")[:6] == ["65534", "65534", "/tmp", "hn", "bar",
                                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


@pytest.mark.dockyard_only("dockyard refuses an unknown user 400 with the lookup's words before it mounts anything; "
                           "dockerd 20.10 answers 500 with runc's (a difference kept on purpose)")
def test_unknown_user_fails_start(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["true"], user="nosuchuser")
    try:
        status, body = daemon.api_json("POST", f"/containers/{c.id}/start")
        assert status == 400
        assert body["message"] == "unable to find user nosuchuser: no matching entries in passwd file"
        assert not os.path.ismount(os.path.join(daemon.data_root, "snapshots", c.id, "merged"))
    finally:
        c.remove(force=True)


def test_resources_reach_the_cgroup(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, nano_cpus=500_000_000, pids_limit=50,
                              cpu_shares=512, mem_limit="32m", mem_reservation="16m")
    try:
        path = f"{daemon.cgroup_parent}/{c.id}"
        assert cgroupfs.read_limit(path, "cpu_quota") == "50000"
        assert cgroupfs.read_limit(path, "cpu_period") == "100000"
        assert cgroupfs.read_limit(path, "cpu_shares") == cgroupfs.expected_cpu_shares(512)
        assert cgroupfs.read_limit(path, "pids") == "50"
        assert cgroupfs.read_limit(path, "memory") == str(32 << 20)
        assert cgroupfs.read_limit(path, "memory_reservation") == str(16 << 20)
    finally:
        c.remove(force=True)
    assert not os.path.exists(cgroupfs.directory(f"{daemon.cgroup_parent}/{c.id}"))


def test_sysctls_ulimits_shm(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "{ cat /proc/sys/net/ipv4/ip_forward; ulimit -n; df -k /dev/shm | tail -1; }"
                                      " > /out/o", sysctls={"net.ipv4.ip_forward": "1"},
                      ulimits=[docker.types.Ulimit(name="nofile", soft=1234, hard=1234)], shm_size="8m")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "1" and lines[1] == "1234" and lines[2].split()[1] == "8192"


def test_network_container_mode(daemon: TestDaemon, client: docker.DockerClient, outdir: str) -> None:
    a = client.containers.run("busybox", ["sleep", "300"], detach=True)
    try:
        pid = a.attrs["State"]["Pid"] or client.api.inspect_container(a.id)["State"]["Pid"]
        want = os.readlink(f"/proc/{pid}/ns/net")
        code, text = _run(client, outdir, "readlink /proc/self/ns/net > /out/o", network_mode=f"container:{a.id}")
        assert code == 0 and text.strip() == want
    finally:
        a.remove(force=True)


def test_changes_and_inspect_shape(daemon: TestDaemon, client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "echo x > /tmp/new; rm /etc/group"], detach=True)
    try:
        assert c.wait(timeout=10)["StatusCode"] == 0
        changes = {(ch["Path"], ch["Kind"]) for ch in c.diff()}
        assert ("/tmp/new", 1) in changes and ("/etc/group", 2) in changes
        info = client.api.inspect_container(c.id)
        for key in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath",
                    "HostsPath", "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel",
                    "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig", "GraphDriver", "Mounts", "Config",
                    "NetworkSettings"):
            assert key in info, key
        assert info["Driver"] == "overlay2" and info["GraphDriver"]["Name"] == "overlay2"
        assert info["Image"].startswith("sha256:")
    finally:
        c.remove(force=True)


def test_run_rm_start_failure_leaves_nothing(daemon: TestDaemon, busybox_image: str) -> None:
    status, body = daemon.api_json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["/nonexistent"],
                                                                  "HostConfig": {"AutoRemove": True}})
    assert status == 201
    status, _ = daemon.api_json("POST", f"/containers/{body['Id']}/start")
    assert status == 400
    assert daemon.api("GET", f"/containers/{body['Id']}/json")[0] == 404
    assert not os.path.exists(os.path.join(daemon.data_root, "snapshots", body["Id"]))


def test_runc_runs_the_same_bundle(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "{ grep CapEff /proc/self/status; cat /proc/self/oom_score_adj; } > /out/o",
                      runtime="runc", oom_score_adj=100, cpuset_cpus="0")
    assert code == 0
    assert text.split()[1] == "00000000a80425fb" and text.split()[2] == "100"


def test_cpuset_and_oom_score(daemon: TestDaemon, client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "{ cat /proc/self/oom_score_adj; cat /sys/fs/cgroup/cpuset/cpuset.cpus; } "
                                      "> /out/o", oom_score_adj=5, cpuset_cpus="0")
    assert code == 0
    assert text.split() == ["5", "0"]


def _status_field(text: str, key: str) -> str:
    return [line.split()[1] for line in text.splitlines() if line.startswith(key + ":")][0]


def test_seccomp_nnp_and_masked_paths(client: docker.DockerClient, outdir: str) -> None:
    code, text = _run(client, outdir, "{ cat /proc/self/status; echo kcore=$(cat /proc/kcore | wc -c); "
                                      "echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro; } > /out/o")
    assert code == 0
    assert _status_field(text, "Seccomp") == "2" and _status_field(text, "NoNewPrivs") == "0"
    assert "kcore=0" in text and "sys-ro" in text
    code, text = _run(client, outdir, "cat /proc/self/status > /out/o",
                      security_opt=["seccomp=unconfined", "no-new-privileges"])
    assert code == 0
    assert _status_field(text, "Seccomp") == "0" and _status_field(text, "NoNewPrivs") == "1"
