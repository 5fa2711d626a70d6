"""Pure container logic: restart policy, signals, status text, create normalization, caps, mounts, users."""

from __future__ import annotations

import os
import time

import pytest

from dockyard.containers import create, mounts, restart, spec
from dockyard.containers.signals import parse_signal
from dockyard.containers.state import State, now_rfc3339, parse_rfc3339, status_text
from dockyard.containers.users import resolve_user
from dockyard.errors import InvalidParameter


def test_backoff_doubles_and_resets() -> None:
    b = restart.Backoff()
    assert [b.next(0.5) for _ in range(4)] == [0.1, 0.2, 0.4, 0.8]
    assert b.next(11.0) == 0.1
    for _ in range(20):
        b.next(0)
    assert b.delay == restart.BACKOFF_MAX


@pytest.mark.parametrize(("policy", "code", "count", "manual", "want"), [
    ({"Name": "no"}, 1, 0, False, False),
    ({"Name": "always"}, 0, 5, True, True),
    ({"Name": "unless-stopped"}, 0, 0, False, True),
    ({"Name": "unless-stopped"}, 0, 0, True, False),
    ({"Name": "on-failure"}, 0, 0, False, False),
    ({"Name": "on-failure", "MaximumRetryCount": 2}, 1, 1, False, True),
    ({"Name": "on-failure", "MaximumRetryCount": 2}, 1, 2, False, False),
    ({"Name": "on-failure"}, 1, 100, False, True),
])
def test_should_restart(policy: dict, code: int, count: int, manual: bool, want: bool) -> None:
    assert restart.should_restart(policy, code, count, manual) is want


def test_signals() -> None:
    assert parse_signal("SIGKILL") == 9 and parse_signal("kill") == 9 and parse_signal("15") == 15
    assert parse_signal(None) == 9 and parse_signal("", 15) == 15
    with pytest.raises(InvalidParameter):
        parse_signal("SIGNOPE")
    with pytest.raises(InvalidParameter):
        parse_signal("99")


def test_times_and_status_text() -> None:
    ts = now_rfc3339()
    assert ts.endswith("Z") and len(ts) == 30 and abs(parse_rfc3339(ts) - time.time()) < 2
    st = State()
    assert status_text(st) == "Created"
    st.set_running(1)
    now = parse_rfc3339(st.StartedAt)
    assert status_text(st, now + 3) == "Up 3 seconds"
    st.Paused = True
    assert status_text(st, now + 90) == "Up About a minute (Paused)"
    st.Paused = False
    st.Health = {"Status": "healthy"}
    assert status_text(st, now + 1) == "Up 1 second (healthy)"
    st.set_stopped(2)
    assert status_text(st, parse_rfc3339(st.FinishedAt) + 120) == "Exited (2) 2 minutes ago"


def test_normalize_merges_image_config() -> None:
    image = {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/w", "Labels": {"x": "1"},
                        "Entrypoint": None, "StopSignal": "SIGQUIT"}}
    cfg, hc, net = create.normalize({"Image": "i", "Env": ["A=2", "B=3"], "Labels": {"y": "2"}}, image,
                                    "dockyard", "json-file", {"max-size": "10m"})
    # dockerd's merge: the user's entries first, then the image's it did not name (checked on dockerd 20.10)
    assert cfg["Cmd"] == ["sh"] and cfg["Env"] == ["A=2", "B=3", "PATH=/bin"] and cfg["WorkingDir"] == "/w"
    assert cfg["Labels"] == {"x": "1", "y": "2"} and cfg["StopSignal"] == "SIGQUIT"
    assert hc["NetworkMode"] == "bridge" and hc["Runtime"] == "dockyard" and hc["ShmSize"] == 67108864
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m"}}
    cfg, _, _ = create.normalize({"Image": "i", "Entrypoint": ["echo"]}, image, "dockyard", "json-file", {})
    assert cfg["Entrypoint"] == ["echo"] and cfg["Cmd"] is None  # a new entrypoint drops the image's Cmd
    _, _, net = create.normalize({"Image": "i", "NetworkingConfig": {"EndpointsConfig": {"default": {}}}},
                                 image, "dockyard", "json-file", {})
    assert net["EndpointsConfig"] == {"bridge": {}}


@pytest.mark.parametrize(("body", "message"), [
    ({"HostConfig": {"Memory": 100}}, "Minimum memory limit allowed is 6MB"),
    ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, "invalid restart policy: unknown policy"),
    ({"HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}}, "AutoRemove"),
    ({"HostConfig": {"Binds": ["relative:dir"]}}, "invalid volume specification"),
    ({"HostConfig": {"SecurityOpt": ["bogus=1"]}}, "invalid --security-opt"),
    ({"HostConfig": {"NanoCpus": 1000 * 1_000_000_000}}, "Range of CPUs"),
    ({"HostConfig": {"LogConfig": {"Type": "syslog"}}}, "no log driver named 'syslog'"),
    ({"Cmd": [], "Entrypoint": [""]}, "no command specified"),
])
def test_normalize_rejects(body: dict, message: str) -> None:
    base = {"Image": "i", "Cmd": ["true"], **body}
    with pytest.raises(InvalidParameter) as exc:
        create.normalize(base, {"config": {}}, "dockyard", "json-file", {})
    assert message in str(exc.value)


def test_capabilities() -> None:
    host = spec.DEFAULT_CAPS + ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    assert spec.capabilities({}, host) == spec.DEFAULT_CAPS
    assert "CAP_NET_ADMIN" in spec.capabilities({"CapAdd": ["NET_ADMIN"]}, host)
    assert "CAP_CHOWN" not in spec.capabilities({"CapDrop": ["chown"]}, host)
    assert spec.capabilities({"CapDrop": ["ALL"], "CapAdd": ["KILL"]}, host) == ["CAP_KILL"]
    assert spec.capabilities({"CapAdd": ["ALL"], "CapDrop": ["SYS_ADMIN"]}, host) == \
        [c for c in host if c != "CAP_SYS_ADMIN"]
    assert spec.capabilities({"Privileged": True}, host) == host
    assert "CAP_SYS_RESOURCE" not in spec.capabilities({"CapAdd": ["SYS_RESOURCE"]}, host)


def test_resources() -> None:
    r = spec.resources({"Memory": 64 << 20, "NanoCpus": 1_500_000_000, "PidsLimit": 10, "BlkioWeight": 300})
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert r["cpu"] == {"period": 100000, "quota": 150000}
    assert r["pids"] == {"limit": 10} and r["blockIO"] == {"weight": 300}
    assert spec.resources({"Memory": 64 << 20, "MemorySwap": -1})["memory"]["swap"] == -1


def test_mount_plan(tmp_path: os.PathLike) -> None:
    src = os.path.join(str(tmp_path), "made")
    hc = {"Binds": [f"{src}:/data:ro", "vol:/v"], "Mounts": [{"Type": "tmpfs", "Target": "/t",
                                                               "TmpfsOptions": {"SizeBytes": 1024}}],
          "Tmpfs": {"/run": "size=1m"}}
    plan = mounts.plan(hc, {}, {}, lambda name, cid: f"/vols/{name}", "c")
    assert os.path.isdir(src)
    by_dest = {m["destination"]: m for m in plan.oci_mounts}
    assert by_dest["/data"]["options"] == ["rbind", "rprivate", "ro"]
    assert by_dest["/v"]["source"] == "/vols/vol"
    assert "size=1024" in by_dest["/t"]["options"] and "size=1m" in by_dest["/run"]["options"]
    assert [m["Type"] for m in plan.inspect] == ["bind", "volume", "tmpfs"]
    assert mounts.volume_names({"Binds": ["/h:/x", "named:/n"]}, {"Volumes": {"/anon": {}}}) == \
        [("named", "/n"), ("", "/anon")]


def test_resolve_user(tmp_path: os.PathLike) -> None:
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    assert resolve_user(root, "", []) == (0, 0, [0])  # docker: the primary gid leads the additional gids
    assert resolve_user(root, "app", []) == (1000, 1000, [1000, 2000])
    assert resolve_user(root, "app:root", []) == (1000, 0, [0])  # explicit group: no /etc/group memberships
    assert resolve_user(root, "4242", ["extra"]) == (4242, 0, [0, 2000])
    with pytest.raises(InvalidParameter, match="unable to find user nobody2: no matching entries in passwd file"):
        resolve_user(root, "nobody2", [])


def test_merge_env_follows_dockers_replace_or_append() -> None:
    """docker's ReplaceOrAppendEnvValues: later values win in first-seen order; a bare name unsets an earlier
    variable, and is kept as given when nothing set it."""
    assert spec.merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]
    assert spec.merge_env(["PATH=/bin"], ["Foo", "Other=one", "Blank="]) == ["PATH=/bin", "Foo", "Other=one",
                                                                           "Blank="]
    assert spec.merge_env(["PATH=/bin", "A=1"], ["A"]) == ["PATH=/bin"]


def test_create_env_merge_is_dockerds() -> None:
    assert create.merge_image_env(["A=2", "Foo"], ["PATH=/bin", "A=1"]) == ["A=2", "Foo", "PATH=/bin"]
    assert create.merge_image_env(["PATH"], ["PATH=/bin"]) == ["PATH"]
    assert create.merge_image_env([], ["PATH=/bin"]) == ["PATH=/bin"]
