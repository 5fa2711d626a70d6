"""`dockyard compose` against a real daemon: the lifecycle of a two-tier app, depends_on conditions,
recreate only on change, secrets/configs, static addresses, failures that leave nothing behind, and the
interop with docker-compose 1.29 and the docker CLI plugin."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from helpers.daemon import DOCKER, TestDaemon, wait_for

DOCKYARD = os.path.join(os.path.dirname(sys.executable), "dockyard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_subnet() -> str:
    """A 10.1xx.y.0/24 no route of the host uses (other test daemons' bridges take 10.2xx)."""
    routes = subprocess.run(["ip", "-o", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(100):
        net = f"10.{150 + secrets.randbelow(50)}.{secrets.randbelow(256)}."
        if net not in routes:
            return net + "0/24"
    raise RuntimeError("no free subnet")


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        return str(r.read().decode())


TWO_TIER = """\
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo \\"hello from $$GREETING\\" > /data/index.html; echo web-ready; exec httpd -f -p 80 -h /data"]
    environment:
      GREETING: ${{GREETING:-compose}}
    ports: ["127.0.0.1:{port}:80"]
    volumes: [data:/data]
    healthcheck:
      test: ["CMD-SHELL", "test -f /data/index.html"]
      interval: 1s
      retries: 20
  client:
    image: busybox
    command: ["sh", "-c", "wget -qO- http://web/ && echo got-page; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    depends_on:
      web: {{condition: service_healthy}}
volumes:
  data: {{}}
"""


def test_two_tier_lifecycle(project: Any) -> None:
    port = free_port()
    p = project(TWO_TIER.format(port=port))
    r = p.ok("up", "-d")
    assert f"Container {p.name}-web-1  Healthy" in r.stderr and f"Network {p.name}_default  Created" in r.stderr
    assert wait_for(lambda: "hello from compose" in fetch(port), timeout=10)
    # names and labels are Compose v2's
    cs = {c["Names"][0].lstrip("/"): c for c in p.containers()}
    assert set(cs) == {f"{p.name}-web-1", f"{p.name}-client-1"}
    lbl = cs[f"{p.name}-web-1"]["Labels"]
    assert lbl["com.docker.compose.service"] == "web" and lbl["com.docker.compose.container-number"] == "1"
    assert lbl["com.docker.compose.oneoff"] == "False" and lbl["com.docker.compose.project.working_dir"] == str(p.dir)
    assert lbl["com.docker.compose.image"].startswith("sha256:") and len(lbl["com.docker.compose.config-hash"]) == 64
    assert cs[f"{p.name}-client-1"]["Labels"]["com.docker.compose.depends_on"] == "web:service_healthy:false"
    ps = p.ok("ps").stdout.splitlines()
    assert ps[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert any(f"{p.name}-web-1" in line and f"127.0.0.1:{port}->80/tcp" in line for line in ps)
    rows = [json.loads(line) for line in p.ok("ps", "--format", "json").stdout.splitlines()]
    assert {r["Service"] for r in rows} == {"web", "client"} and all(r["State"] == "running" for r in rows)
    assert sorted(p.ok("ps", "-q").stdout.split()) == sorted(r["ID"] for r in rows)
    assert p.ok("ps", "--services").stdout.split() == ["client", "web"]
    # --format takes any Go template (the CLI's engine): functions, conditionals, ranges, table headers
    tpl = '{{.Service}}:{{if eq .State "running"}}up{{else}}down{{end}}:{{len .Publishers}}:{{upper .Service}}'
    assert sorted(p.ok("ps", "--format", tpl).stdout.split()) == ["client:up:0:CLIENT", "web:up:1:WEB"]
    assert p.ok("ps", "--format", "{{range .Publishers}}{{.PublishedPort}}{{end}}", "web").stdout.strip() \
        == str(port)
    table = p.ok("ps", "--format", "table {{.Name}}\t{{.RunningFor}}\t{{.ID}}").stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == ["NAME", "CREATED", "CONTAINER ID"] and len(table) == 3
    bad = p.run("ps", "--format", "{{.Name")
    assert bad.returncode != 0 and "template parsing error" in bad.stderr
    wait_for(lambda: "got-page" in p.ok("logs", "client").stdout, timeout=10)
    logs = p.ok("logs", "--no-color", "web").stdout
    assert f"{p.name}-web-1  | web-ready" in logs
    assert p.ok("logs", "--no-log-prefix", "web").stdout.strip().splitlines()[0] == "web-ready"
    assert p.ok("exec", "-T", "web", "cat", "/data/index.html").stdout == "hello from compose\n"
    assert p.run("exec", "-T", "web", "sh", "-c", "exit 7").returncode == 7
    assert p.ok("port", "web", "80").stdout.strip() == f"127.0.0.1:{port}"
    # scale the client (no published port) to 3, then back to 1
    p.ok("up", "-d", "--scale", "client=3")
    names = sorted(c["Names"][0].lstrip("/") for c in p.containers() if c["Labels"]["com.docker.compose.service"]
                   == "client")
    assert names == [f"{p.name}-client-{i}" for i in (1, 2, 3)]
    p.ok("up", "-d", "--scale", "client=1")
    assert len([c for c in p.containers() if c["Labels"]["com.docker.compose.service"] == "client"]) == 1
    assert p.ok("ls").stdout.count(p.name) == 1
    r = p.ok("down", "-v", "-t", "1")
    assert f"Volume {p.name}_data  Removed" in r.stderr
    assert p.leftovers() == []


def test_second_up_changes_nothing_and_a_change_recreates_only_that(project: Any) -> None:
    p = project("""\
        services:
          a:
            image: busybox
            command: [sleep, "1000"]
            environment: {V: "${V:-1}"}
          b:
            image: busybox
            command: [sleep, "1000"]
          c:
            image: busybox
            command: [sleep, "1000"]
            depends_on:
              a: {condition: service_started, restart: true}
        """)
    p.ok("up", "-d")
    before = {c["Names"][0]: c["Id"] for c in p.containers()}
    r = p.ok("up", "-d")
    assert {c["Names"][0]: c["Id"] for c in p.containers()} == before
    assert "Created" not in r.stderr and "Recreate" not in r.stderr, r.stderr
    assert r.stderr.count("Running") == 3
    r = p.ok("up", "-d", env={"V": "2"})
    after = {c["Names"][0]: c["Id"] for c in p.containers()}
    assert after[f"/{p.name}-b-1"] == before[f"/{p.name}-b-1"]
    assert after[f"/{p.name}-a-1"] != before[f"/{p.name}-a-1"]
    assert after[f"/{p.name}-c-1"] != before[f"/{p.name}-c-1"]  # it depends on a, which changed
    assert f"Container {p.name}-a-1  Recreated" in r.stderr
    r = p.ok("up", "-d", "--force-recreate", "b", env={"V": "2"})
    assert f"Container {p.name}-b-1  Recreated" in r.stderr
    # stop / start / restart / pause / unpause / kill / rm
    p.ok("stop", "-t", "1", "b")
    assert {c["Names"][0]: c["State"] for c in p.containers()}[f"/{p.name}-b-1"] == "exited"
    p.ok("start", "b")
    p.ok("pause", "a")
    assert {c["Names"][0]: c["State"] for c in p.containers()}[f"/{p.name}-a-1"] == "paused"
    p.ok("unpause", "a")
    p.ok("restart", "-t", "1", "b")

    def started(svc: str) -> str:
        c = [c for c in p.containers() if c["Labels"]["com.docker.compose.service"] == svc][0]
        return str(p.daemon.api_json("GET", f"/containers/{c['Id']}/json")[1]["State"]["StartedAt"])

    c_before = started("c")
    r = p.ok("restart", "-t", "1", "a")
    assert f"Container {p.name}-c-1  Restarting" in r.stderr  # it depends on a with restart: true
    assert started("c") != c_before
    p.ok("kill", "c")
    p.ok("rm", "-f", "c")
    assert f"/{p.name}-c-1" not in {c["Names"][0] for c in p.containers()}
    top = p.ok("top", "a").stdout
    assert f"{p.name}-a-1" in top and "sleep 1000" in top


def test_depends_on_conditions_wait(project: Any) -> None:
    p = project("""\
        services:
          slow:
            image: busybox
            command: ["sh", "-c", "sleep 2; touch /shared/healthy; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
            volumes: [shared:/shared]
            healthcheck:
              test: ["CMD", "test", "-f", "/shared/healthy"]
              interval: 300ms
              retries: 50
          init:
            image: busybox
            command: ["sh", "-c", "sleep 1; echo done > /shared/init"]
            volumes: [shared:/shared]
          app:
            image: busybox
            command: ["sh", "-c", "test -f /shared/healthy && test -f /shared/init && echo both-ready"]
            volumes: [shared:/shared]
            depends_on:
              slow: {condition: service_healthy}
              init: {condition: service_completed_successfully}
        volumes: {shared: {}}
        """)
    t0 = time.monotonic()
    p.ok("up", "-d")
    assert time.monotonic() - t0 >= 2.0
    wait_for(lambda: "both-ready" in p.ok("logs", "app").stdout, timeout=10)
    app = [c for c in p.containers() if c["Labels"]["com.docker.compose.service"] == "app"][0]
    assert p.daemon.api_json("POST", f"/containers/{app['Id']}/wait")[1]["StatusCode"] == 0


def test_failed_dependency_and_wait(project: Any) -> None:
    p = project("""\
        services:
          bad:
            image: busybox
            command: ["sh", "-c", "exit 3"]
          app:
            image: busybox
            command: [sleep, "1000"]
            depends_on:
              bad: {condition: service_completed_successfully}
        """)
    r = p.run("up", "-d")
    assert r.returncode == 1
    assert 'service "bad" didn\'t complete successfully: exit 3' in r.stderr
    assert f"Container {p.name}-bad-1" in r.stderr and "compose down" in r.stderr
    p.ok("down")
    assert p.leftovers() == []
    q = project("""\
        services:
          h:
            image: busybox
            command: [sleep, "1000"]
            healthcheck: {test: ["CMD", "true"], interval: 200ms}
        """)
    r = q.ok("up", "--wait")
    assert f"Container {q.name}-h-1  Healthy" in r.stderr


def test_attached_up_prefixes_and_exit_code_from(project: Any) -> None:
    p = project("""\
        services:
          job:
            image: busybox
            command: ["sh", "-c", "echo job-line; sleep 0.5; exit 4"]
          svc:
            image: busybox
            command: ["sh", "-c", "trap 'exit 0' TERM; echo svc-line; while true; do sleep 0.1; done"]
        """)
    r = p.run("up", "--abort-on-container-exit", "--no-color", timeout=60)
    assert r.returncode == 4, r.stderr
    assert f"{p.name}-job-1  | job-line" in r.stdout and f"{p.name}-svc-1  | svc-line" in r.stdout
    assert f"{p.name}-job-1 exited with code 4" in r.stdout
    r = p.run("up", "--exit-code-from", "job", "--no-color", timeout=60)
    assert r.returncode == 4


def test_attached_up_follows_restarted_containers(project: Any) -> None:
    p = project("""\
        services:
          flaky:
            image: busybox
            command: ["sh", "-c", "echo flaky-run; sleep 0.3; exit 3"]
            restart: "on-failure:2"
        """)
    r = p.run("up", "--no-color", timeout=90)
    assert r.returncode == 0, r.stderr
    # the first run and both restarts are followed; up ends when the policy gives up
    assert r.stdout.count(f"{p.name}-flaky-1  | flaky-run") == 3, r.stdout
    assert r.stdout.count(f"{p.name}-flaky-1 exited with code 3") == 3, r.stdout


def test_secrets_configs_static_ip_and_run(project: Any, tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("s3cret\n")
    subnet = free_subnet()
    addr = subnet.replace(".0/24", ".42")
    p = project(f"""\
        services:
          app:
            image: busybox
            command: [sleep, "1000"]
            secrets:
              - token
              - envtok
            configs:
              - source: conf
                target: /etc/app.conf
              - source: inline
                target: /etc/inline.key
                mode: 0400
            networks:
              fixed:
                ipv4_address: {addr}
                aliases: [appalias]
        secrets:
          token: {{file: {tmp_path / 'token.txt'}}}
          envtok: {{environment: APP_TOKEN}}
        configs:
          conf: {{content: "key=value"}}
          inline: {{content: "k3y"}}
        networks:
          fixed:
            ipam:
              config: [{{subnet: "{subnet}"}}]
        """)
    (p.dir / ".env").write_text("APP_TOKEN=from-env\n")
    p.ok("up", "-d")
    assert p.ok("exec", "-T", "app", "cat", "/run/secrets/token").stdout == "s3cret\n"
    # environment secrets and content configs are written into the container as Compose v2 does: 0444
    # unless the service gives a mode
    assert p.ok("exec", "-T", "app", "cat", "/run/secrets/envtok", "/etc/inline.key").stdout == "from-envk3y"
    assert p.ok("exec", "-T", "app", "stat", "-c", "%a %n", "/run/secrets/envtok", "/etc/inline.key",
                "/etc/app.conf").stdout.split("\n")[:3] == ["444 /run/secrets/envtok", "400 /etc/inline.key",
                                                            "444 /etc/app.conf"]
    assert p.run("exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/token").returncode != 0
    assert p.ok("exec", "-T", "app", "cat", "/etc/app.conf").stdout == "key=value"
    assert f"inet {addr}/24" in p.ok("exec", "-T", "app", "ip", "-4", "addr").stdout
    r = p.ok("run", "--rm", "-T", "app", "sh", "-c", "cat /run/secrets/token; nslookup appalias 2>&1")
    assert "s3cret" in r.stdout and addr in r.stdout
    assert not [c for c in p.containers() if c["Labels"]["com.docker.compose.oneoff"] == "True"]
    assert p.run("run", "--rm", "-T", "app", "sh", "-c", "exit 5").returncode == 5


def test_port_in_use_and_missing_external_leave_nothing(project: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        p = project(f"""\
            services:
              web:
                image: busybox
                command: [sleep, "1000"]
                ports: ["127.0.0.1:{port}:80"]
            """)
        r = p.run("up", "-d")
    assert r.returncode == 1
    assert "Error response from daemon" in r.stderr and ("allocated" in r.stderr or "in use" in r.stderr), r.stderr
    p.ok("down")
    assert p.leftovers() == []
    q = project("""\
        services:
          web: {image: busybox, command: [sleep, "1000"], networks: [ext]}
        networks:
          ext: {external: true, name: dyc-does-not-exist}
        """)
    r = q.run("up", "-d")
    assert r.returncode == 1 and "network dyc-does-not-exist declared as external, but could not be found" in r.stderr
    assert q.leftovers() == []
    # external secrets/configs belong to swarm: refused with Compose v2's words, before anything is made
    ext = project("""\
        services:
          web: {image: busybox, command: [sleep, "1000"], secrets: [tok]}
        secrets:
          tok: {external: true, name: swarm-token}
        """)
    r = ext.run("up", "-d")
    assert r.returncode == 1 and "unsupported external secret swarm-token" in r.stderr, r.stderr
    assert ext.leftovers() == []
    bad = project("services:\n  web:\n    image: busybox\n    prots: [80]\n")
    r = bad.run("up", "-d")
    assert r.returncode == 15 and "services.web additional properties 'prots' not allowed" in r.stderr
    assert bad.leftovers() == []


def test_profiles_include_extends_and_override(project: Any) -> None:
    p = project("""\
        include: [extra.yaml]
        services:
          base:
            image: busybox
            command: [sleep, "1000"]
            labels: {tier: base}
          child:
            extends: base
            labels: {tier: child, from_env: "${FROM_DOTENV:?set in .env}"}
          dbg:
            image: busybox
            command: [sleep, "1000"]
            profiles: [debug]
        """)
    (p.dir / "extra.yaml").write_text("services:\n  inc:\n    image: busybox\n    command: [sleep, '1000']\n")
    (p.dir / "compose.override.yaml").write_text("services:\n  base:\n    labels: {extra: 'yes'}\n")
    r = p.run("up", "-d")
    assert r.returncode == 15 and "required variable FROM_DOTENV is missing a value: set in .env" in r.stderr
    assert p.leftovers() == []
    (p.dir / ".env").write_text("FROM_DOTENV=dotenv-value\n")
    p.ok("up", "-d")
    svc = {c["Labels"]["com.docker.compose.service"]: c["Labels"] for c in p.containers()}
    assert set(svc) == {"base", "child", "inc"}
    assert svc["base"]["extra"] == "yes" and svc["child"]["tier"] == "child"
    assert svc["child"]["from_env"] == "dotenv-value"
    p.ok("--profile", "debug", "up", "-d")
    assert "dbg" in {c["Labels"]["com.docker.compose.service"] for c in p.containers()}
    r = p.ok("down")
    assert f"Container {p.name}-dbg-1  Removed" in r.stderr


def test_docker_compose_v1_sees_the_project(project: Any) -> None:
    v1 = shutil.which("docker-compose")
    if not v1:
        pytest.skip("docker-compose 1.29 is not installed")
    p = project("services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n")
    p.ok("up", "-d")
    r = subprocess.run([v1, "-p", p.name, "ps"], cwd=p.dir, capture_output=True, text=True, env=p.daemon.env,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"{p.name}-web-1" in r.stdout and "Up" in r.stdout


def test_docker_cli_plugin(project: Any, daemon: TestDaemon) -> None:
    if not os.path.exists(DOCKER):
        pytest.skip("the docker CLI is not installed")
    r = subprocess.run([DOCKYARD, "compose", "install-plugin"], capture_output=True, text=True, env=daemon.env)
    assert r.returncode == 0, r.stderr
    plugin = Path(daemon.env["DOCKER_CONFIG"]) / "cli-plugins" / "docker-compose"
    assert plugin.exists() and os.access(plugin, os.X_OK)
    p = project("services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n")
    r = subprocess.run([DOCKER, "compose", "-p", p.name, "up", "-d"], cwd=p.dir, capture_output=True, text=True,
                       env=daemon.env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [c["Names"][0] for c in p.containers()] == [f"/{p.name}-web-1"]
    r = subprocess.run([DOCKER, "compose", "version"], capture_output=True, text=True, env=daemon.env)
    assert r.returncode == 0 and "dockyard compose" in r.stdout
    env = {k: v for k, v in daemon.env.items() if k not in ("DOCKER_HOST", "DOCKYARD_HOST")}
    r = subprocess.run([DOCKER, "-H", daemon.host, "compose", "-p", p.name, "ps", "--services"], cwd=p.dir,
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["web"], r.stderr
    r = subprocess.run([DOCKER, "compose", "-p", p.name, "down"], cwd=p.dir, capture_output=True, text=True,
                       env=daemon.env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert p.leftovers() == []


def test_inspection_commands(project: Any, tmp_path: Path) -> None:
    custom = "dyc-custom-" + secrets.token_hex(3)
    p = project(f"""\
        services:
          named:
            image: busybox
            container_name: {custom}
            command: [sleep, "1000"]
          web:
            image: busybox
            command: ["sh", "-c", "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done"]
          job:
            image: busybox
            command: ["sh", "-c", "sleep 1; exit 3"]
        """)
    events = subprocess.Popen([DOCKYARD, "compose", "-p", p.name, "events", "--json"], cwd=p.dir, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=p.daemon.env)
    try:
        time.sleep(0.5)
        p.ok("up", "-d")
        assert f"/{custom}" in {c["Names"][0] for c in p.containers()}
        assert p.ok("exec", "-T", "named", "hostname").stdout.strip()
        r = p.run("wait", "job")
        assert (r.returncode, r.stdout.strip()) == (3, "3")  # its exit code, printed and returned
        img = p.ok("images").stdout.splitlines()
        assert img[0].split()[:3] == ["CONTAINER", "REPOSITORY", "TAG"] and any("busybox" in x for x in img[1:])
        stats = p.ok("stats", "--no-stream", "web").stdout
        assert f"{p.name}-web-1" in stats
        (tmp_path / "in.txt").write_text("copied in\n")
        p.ok("cp", str(tmp_path / "in.txt"), "web:/tmp/in.txt")
        assert p.ok("exec", "-T", "web", "cat", "/tmp/in.txt").stdout == "copied in\n"
        p.ok("cp", "web:/tmp/in.txt", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == "copied in\n"
        assert "Docker Compose version" in p.ok("version").stdout
        ls = json.loads(p.ok("ls", "--format", "json").stdout)
        assert any(x["Name"] == p.name and x["Status"].startswith(("exited", "running")) for x in ls)
    finally:
        events.terminate()
        out, _ = events.communicate(timeout=10)
    kinds = [(e["service"], e["action"]) for e in map(json.loads, out.splitlines())]
    assert ("web", "create") in kinds and ("web", "start") in kinds and ("job", "die") in kinds, kinds


def test_watch_syncs_files(project: Any) -> None:
    p = project("""\
        services:
          web:
            image: busybox
            command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
            develop:
              watch:
                - action: sync
                  path: ./src
                  target: /app
        """)
    (p.dir / "src").mkdir()
    (p.dir / "src" / "a.txt").write_text("one\n")
    w = subprocess.Popen([DOCKYARD, "compose", "-p", p.name, "watch"], cwd=p.dir, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=p.daemon.env)
    try:
        wait_for(lambda: p.containers(all_=False), timeout=30)
        time.sleep(1.0)
        (p.dir / "src" / "a.txt").write_text("two\n")
        wait_for(lambda: p.run("exec", "-T", "web", "cat", "/app/a.txt").stdout == "two\n", timeout=20,
                 interval=0.3)
        (p.dir / "src" / "sub").mkdir()  # a directory made after watch began is watched too
        (p.dir / "src" / "sub" / "b.txt").write_text("bee\n")
        wait_for(lambda: p.run("exec", "-T", "web", "cat", "/app/sub/b.txt").stdout == "bee\n", timeout=20,
                 interval=0.3)
        (p.dir / "src" / "sub" / "b.txt").write_text("bee2\n")
        wait_for(lambda: p.run("exec", "-T", "web", "cat", "/app/sub/b.txt").stdout == "bee2\n", timeout=20,
                 interval=0.3)
        (p.dir / "src" / "a.txt").unlink()  # removed on the host: removed in the container
        wait_for(lambda: p.run("exec", "-T", "web", "test", "-e", "/app/a.txt").returncode == 1, timeout=20,
                 interval=0.3)
        shutil.rmtree(p.dir / "src" / "sub")  # a whole directory too
        wait_for(lambda: p.run("exec", "-T", "web", "test", "-e", "/app/sub").returncode == 1, timeout=20,
                 interval=0.3)
        assert p.run("exec", "-T", "web", "test", "-d", "/app").returncode == 0  # the target itself stays
    finally:
        w.terminate()
        w.communicate(timeout=10)


def _on_a_terminal(p: Any, *args: str) -> tuple[int, str]:
    """Run compose with its stderr on a pseudo-terminal (80 columns); (exit code, what the terminal got)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([DOCKYARD, "compose", "-p", p.name, *args], cwd=p.dir, env=p.daemon.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    got = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not data:
                break
            got += data
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return code, got.decode("utf-8", "replace")


def test_live_progress_on_a_terminal(project: Any) -> None:
    p = project("""\
        services:
          slow:
            image: busybox
            command: [sleep, "1000"]
            healthcheck: {test: ["CMD", "true"], interval: 600ms, retries: 5}
          web:
            image: busybox
            command: [sleep, "1000"]
            depends_on: {slow: {condition: service_healthy}}
        """)
    code, screen = _on_a_terminal(p, "up", "-d")
    assert code == 0, screen
    # Compose v2's display: a header with done/total, one line per object, redrawn in place
    assert "[+] Running" in screen and "\x1b[2K" in screen and "\x1b[" in screen.replace("\x1b[2K", "")
    last = screen.rsplit("[+] Running", 1)[1]
    assert last.startswith(" 3/3"), last  # the network and two containers, all done
    assert re.search(rf"✔.*Container {p.name}-web-1  Started +\d+\.\ds", last), last
    assert re.search(rf"✔.*Container {p.name}-slow-1  Healthy +\d+\.\ds", last), last
    assert any(ch in screen for ch in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # the wait for health showed a spinner
    # every line fits the terminal's 80 columns (no wrapping breaks the redraw)
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", last)
    assert all(len(line.rstrip("\r")) <= 80 for line in plain.splitlines()), plain
    # --progress plain (and any non-terminal) prints the plain lines instead
    code, screen = _on_a_terminal(p, "--progress", "plain", "down", "-t", "1")
    assert code == 0 and "[+]" not in screen and f"Container {p.name}-web-1  Removed" in screen, screen
    assert p.leftovers() == []
