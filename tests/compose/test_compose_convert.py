"""A service's keys → the Engine API's container create body (no daemon)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dockyard.compose.convert import create_body, duration_ns, restart_policy, size_bytes
from dockyard.compose.errors import ComposeError
from dockyard.compose.loader import LoadOptions, load_project


def test_durations_and_sizes() -> None:
    assert duration_ns("1m30s") == 90_000_000_000
    assert duration_ns("500ms") == 500_000_000
    assert duration_ns(2) == 2_000_000_000
    assert size_bytes("512m") == 512 << 20 and size_bytes("1gb") == 1 << 30 and size_bytes(100) == 100
    with pytest.raises(ComposeError):
        duration_ns("ten")


def test_restart_policies() -> None:
    assert restart_policy({"restart": "on-failure:3"}) == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert restart_policy({"restart": "no"}) == {"Name": ""}
    assert restart_policy({"deploy": {"restart_policy": {"condition": "any"}}}) == {"Name": "always"}


def test_every_mapped_key(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("x")
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        name: conv
        services:
          db:
            image: busybox
          web:
            image: busybox:1
            command: echo "a b"
            entrypoint: [/bin/sh, -c]
            environment: {A: "1", UNSET: null}
            labels: {l: v}
            container_name: the-web
            hostname: h
            domainname: example.org
            user: "1000:1000"
            working_dir: /w
            tty: true
            stdin_open: true
            stop_signal: SIGINT
            stop_grace_period: 1m
            init: true
            privileged: true
            read_only: true
            cap_add: [NET_ADMIN]
            cap_drop: [ALL]
            dns: 1.1.1.1
            dns_search: [example.org]
            dns_opt: [ndots:2]
            extra_hosts: ["h1:10.0.0.1"]
            sysctls: {net.core.somaxconn: 1024}
            ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 64}
            shm_size: 128m
            pid: host
            ipc: shareable
            logging: {driver: json-file, options: {max-size: 1m}}
            expose: ["3000-3001"]
            ports: ["127.0.0.1:8080:80/udp"]
            volumes:
              - ./data:/data:ro
              - type: volume
                source: vol
                target: /v
                volume: {nocopy: true}
              - type: tmpfs
                target: /t
                tmpfs: {size: 1m}
              - type: bind
                source: ./nocreate
                target: /nc
                bind: {create_host_path: false}
            tmpfs: /run
            links: [db:database]
            healthcheck:
              test: curl -f http://localhost
              interval: 2s
              timeout: 1s
              retries: 4
              start_period: 10s
            deploy:
              resources:
                limits: {cpus: "0.5", memory: 64m, pids: 50}
                reservations: {memory: 32m}
            restart: unless-stopped
            networks:
              back: {priority: 1}
              front: {aliases: [www], ipv4_address: 10.9.0.5}
            secrets: [s]
        networks: {front: {}, back: {}}
        volumes: {vol: {}}
        secrets: {s: {file: ./s.txt}}
        """))
    p = load_project(LoadOptions(cwd=str(tmp_path), environ={}))
    svc = p.services["web"]
    body = create_body(p, "web", svc, 1, "the-web", "sha256:abc", "hash")
    hc = body["HostConfig"]
    assert body["Image"] == "busybox:1" and body["Cmd"] == ["echo", "a b"] and body["Entrypoint"] == ["/bin/sh", "-c"]
    assert body["Env"] == ["A=1"]
    assert body["Labels"]["l"] == "v" and body["Labels"]["com.docker.compose.project"] == "conv"
    assert body["Labels"]["com.docker.compose.image"] == "sha256:abc"
    assert (body["Hostname"], body["Domainname"], body["User"], body["WorkingDir"]) == ("h", "example.org",
                                                                                       "1000:1000", "/w")
    assert body["Tty"] and body["OpenStdin"] and body["StopSignal"] == "SIGINT" and body["StopTimeout"] == 60
    assert body["ExposedPorts"] == {"3000/tcp": {}, "3001/tcp": {}, "80/udp": {}}
    assert body["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f http://localhost"], "Interval": 2_000_000_000,
                                   "Timeout": 1_000_000_000, "StartPeriod": 10_000_000_000, "Retries": 4}
    assert hc["PortBindings"] == {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert f"{tmp_path / 'data'}:/data:ro" in hc["Binds"] and f"{tmp_path / 's.txt'}:/run/secrets/s:ro" in hc["Binds"]
    mounts = {m["Target"]: m for m in hc["Mounts"]}
    assert mounts["/v"] == {"Type": "volume", "Target": "/v", "ReadOnly": False, "Source": "conv_vol",
                            "VolumeOptions": {"NoCopy": True}}
    assert mounts["/t"]["TmpfsOptions"] == {"SizeBytes": 1 << 20}
    assert mounts["/nc"] == {"Type": "bind", "Source": str(tmp_path / "nocreate"), "Target": "/nc", "ReadOnly": False}
    assert hc["Tmpfs"] == {"/run": ""}
    assert hc["RestartPolicy"] == {"Name": "unless-stopped"}
    assert hc["Init"] is True and hc["Privileged"] and hc["ReadonlyRootfs"]
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["ALL"]
    assert (hc["Dns"], hc["DnsSearch"], hc["DnsOptions"]) == (["1.1.1.1"], ["example.org"], ["ndots:2"])
    assert hc["ExtraHosts"] == ["h1:10.0.0.1"] and hc["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in hc["Ulimits"]} == {"nofile": (1024, 2048), "nproc": (64, 64)}
    assert hc["ShmSize"] == 128 << 20 and hc["PidMode"] == "host" and hc["IpcMode"] == "shareable"
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert hc["NanoCpus"] == 500_000_000 and hc["Memory"] == 64 << 20 and hc["PidsLimit"] == 50
    assert hc["MemoryReservation"] == 32 << 20
    assert hc["Links"] == ["conv-db-1:database"]
    eps = body["NetworkingConfig"]["EndpointsConfig"]
    assert hc["NetworkMode"] == "conv_back"  # the higher priority first
    assert eps["conv_front"] == {"Aliases": ["web", "www"], "IPAMConfig": {"IPv4Address": "10.9.0.5"}}
    assert eps["conv_back"] == {"Aliases": ["web"]}


def test_container_name_and_scale_conflict(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n    container_name: xy\n"
                                           "    scale: 2\n")
    p = load_project(LoadOptions(cwd=str(tmp_path), environ={}))
    from dockyard.compose.converge import Converger, UpOptions
    from dockyard.compose.progress import Progress

    class NoEngine:
        def containers(self, *a: object, **k: object) -> list[object]:
            return []

        def image(self, ref: str) -> dict[str, str]:
            return {"Id": "sha256:1"}

    conv = Converger(NoEngine(), p, Progress(open("/dev/null", "w")))  # type: ignore[arg-type]
    with pytest.raises(ComposeError, match="can't set container_name and web as container name must be unique"):
        conv.converge_service("web", UpOptions())
