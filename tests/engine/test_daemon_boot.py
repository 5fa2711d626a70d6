"""`dockyard daemon` flags, socket permissions, config file and clean shutdown."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
import tempfile

from helpers.daemon import DOCKYARD, TestDaemon, finish_daemon


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


def _make_certs(d: str) -> None:
    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca", "-keyout",
         "ca-key.pem", "-out", "ca.pem")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    for name in ("server", "client"):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem",
             "-out", f"{name}.csr")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
             "-days", "1", "-extfile", "ext.cnf", "-out", f"{name}.pem")


def test_tls_tcp_with_client_verification() -> None:
    import random
    import socket
    import ssl

    tmp = tempfile.mkdtemp(prefix="dyt", dir="/tmp")
    certs = os.path.join(tmp, "certs")
    os.makedirs(certs)
    _make_certs(certs)
    port = random.randint(24000, 24999)
    d = TestDaemon(["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", f"{certs}/ca.pem",
                    "--tlscert", f"{certs}/server.pem", "--tlskey", f"{certs}/server-key.pem"], tmp=tmp)
    d.start()
    try:
        env = {k: v for k, v in d.env.items() if k not in ("DOCKER_HOST",)}
        r = subprocess.run(["docker", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert",
                            f"{certs}/ca.pem", "--tlscert", f"{certs}/client.pem", "--tlskey",
                            f"{certs}/client-key.pem", "version", "--format", "{{.Server.APIVersion}}"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "1.47"
        ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")  # no client certificate: refused
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert tls.recv(100) == b""
            except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                pass
    finally:
        finish_daemon(d)
