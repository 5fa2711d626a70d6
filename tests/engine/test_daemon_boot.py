"""`dockyard daemon` flags, socket permissions, config file and clean shutdown."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
import tempfile

from conftest import finish_daemon
from helpers.daemon import DOCKYARD, TestDaemon


def test_socket_mode_group_and_sigterm_cleanup(busybox_tar: str) -> None:
    d = TestDaemon().start()
    try:
        st = os.stat(d.socket)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert grp.getgrgid(st.st_gid).gr_name == "dockyard"
        assert os.path.exists(d.pidfile)
        with open(d.pidfile) as f:
            assert int(f.read()) == d.proc.pid  # type: ignore[union-attr]
        assert d.terminate() == 0
        assert not os.path.exists(d.socket) and not os.path.exists(d.pidfile)
    finally:
        finish_daemon(d)


def test_plain_tcp_refused() -> None:
    with tempfile.TemporaryDirectory(prefix="dyt") as tmp:
        r = subprocess.run([DOCKYARD, "daemon", "--data-root", f"{tmp}/root", "-H", "tcp://127.0.0.1:23750",
                            "--pidfile", f"{tmp}/p"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1
        assert "refusing to listen on tcp://127.0.0.1:23750 without TLS" in r.stderr
        assert not os.path.exists(f"{tmp}/root")


def test_tls_needs_certificates() -> None:
    with tempfile.TemporaryDirectory(prefix="dyt") as tmp:
        r = subprocess.run([DOCKYARD, "daemon", "--data-root", f"{tmp}/root", "-H", "tcp://127.0.0.1:23751",
                            "--tlsverify", "--pidfile", f"{tmp}/p"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "TLS needs --tlscert and --tlskey" in r.stderr


def test_config_file_values(busybox_tar: str) -> None:
    tmp = tempfile.mkdtemp(prefix="dyt", dir="/tmp")
    cfg = os.path.join(tmp, "daemon.json")
    with open(cfg, "w") as f:
        json.dump({"default-runtime": "runc", "log-opts": {"max-size": "1m"}, "storage-opts": ["ignored"],
                   "live-restore": True}, f)
    d = TestDaemon(["--config-file", cfg], tmp=tmp).start()
    try:
        status, info = d.api_json("GET", "/info")
        assert info["DefaultRuntime"] == "runc" and info["LiveRestoreEnabled"] is True
    finally:
        finish_daemon(d)


def test_bad_config_file() -> None:
    with tempfile.TemporaryDirectory(prefix="dyt") as tmp:
        with open(f"{tmp}/daemon.json", "w") as f:
            f.write("{nope")
        r = subprocess.run([DOCKYARD, "daemon", "--config-file", f"{tmp}/daemon.json", "--data-root",
                            f"{tmp}/root"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and "unable to configure the daemon with file" in r.stderr


def test_no_live_restore_stops_containers(busybox_tar: str) -> None:
    d = TestDaemon(["--no-live-restore"]).start()
    try:
        d.load_busybox(busybox_tar)
        status, body = d.api_json("POST", "/containers/create?name=nolr",
                                  {"Image": "busybox", "Cmd": ["sleep", "300"], "StopTimeout": 1})
        assert status == 201
        assert d.api("POST", "/containers/nolr/start")[0] == 204
        pid = d.api_json("GET", "/containers/nolr/json")[1]["State"]["Pid"]
        assert d.terminate() == 0
        assert not os.path.exists(f"/proc/{pid}")
        d.start()
        st = d.api_json("GET", "/containers/nolr/json")[1]["State"]
        assert st["Status"] == "exited" and st["ExitCode"] == 137
    finally:
        finish_daemon(d)
