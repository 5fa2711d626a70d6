"""The model's finer points end to end: `dockyard compose` (a subprocess, as a user runs it) against a real
daemon. Extensions and anchors reach the containers; the config hash is Compose v2's, so only a change v2
counts recreates a container."""

from __future__ import annotations

import json
from typing import Any


def test_extensions_and_anchors_reach_the_containers(project: Any) -> None:
    p = project("""\
        x-base: &base
          image: busybox
          command: ["sleep", "300"]
          labels:
            com.example.role: ${ROLE:-worker}
        x-note: kept
        services:
          a:
            <<: *base
            x-extra: {ignored: by the engine}
          b:
            <<: *base
            labels:
              com.example.role: single
        """)
    cfg = p.ok("config", env={"ROLE": "api"}).stdout
    assert "x-note: kept\n" in cfg and "    x-extra:\n      ignored: by the engine\n" in cfg
    assert "x-base:\n  command:\n    - sleep\n    - \"300\"\n  image: busybox\n" in cfg
    p.ok("up", "-d", env={"ROLE": "api"})
    labels = {c["Labels"]["com.docker.compose.service"]: c["Labels"] for c in p.containers()}
    assert labels["a"]["com.example.role"] == "api"
    assert labels["b"]["com.example.role"] == "single"
    assert not [k for lab in labels.values() for k in lab if k.startswith("x-")]
    assert {c["State"] for c in p.containers()} == {"running"}


HASHED = """\
    services:
      a:
        image: busybox
        command: ["sleep", "300"]
        environment: {V: "1"}
        labels: {tier: "<t&t>"}
{extra}
    """
# compose-go v2.2.0's ServiceConfig of `a` as Go's json.Marshal writes it (see test_compose_hash.py's rules):
# what Compose 2.29.7 hashes into com.docker.compose.config-hash
A_JSON = ('{"command":["sleep","300"],"entrypoint":null,"environment":{"V":"1"},"image":"busybox",'
          '"labels":{"tier":"\\u003ct\\u0026t\\u003e"},"networks":{"default":null}}')


def test_config_hash_label_is_compose_v2s_and_only_real_changes_recreate(project: Any) -> None:
    import hashlib

    p = project(HASHED.replace("{extra}", ""))
    p.ok("up", "-d")
    (c,) = p.containers()
    want = hashlib.sha256(A_JSON.encode()).hexdigest()
    assert c["Labels"]["com.docker.compose.config-hash"] == want
    assert p.ok("config", "--hash", "a").stdout == f"a {want}\n"
    before = p.ids()
    # fields Compose v2 leaves out of the hash: changing them recreates nothing
    for extra in ("        scale: 1", "        pull_policy: missing", "        x-note: {any: thing}",
                  "        depends_on:\n          b: {condition: service_started, required: false}"):
        p.write(HASHED.replace("{extra}", extra))
        r = p.ok("up", "-d")
        assert p.ids() == before, (extra, r.stderr)
        assert "Recreate" not in r.stderr, (extra, r.stderr)
    # a real change does
    p.write(HASHED.replace("{extra}", "").replace('V: "1"', 'V: "2"'))
    r = p.ok("up", "-d")
    assert p.ids() != before and f"Container {p.name}-a-1  Recreated" in r.stderr
    (c,) = p.containers()
    assert c["Labels"]["com.docker.compose.config-hash"] == hashlib.sha256(
        A_JSON.replace('"V":"1"', '"V":"2"').encode()).hexdigest()
    # and --scale of the command line is scale too: the running container is kept, one is added
    before = p.ids()
    p.ok("up", "-d", "--scale", "a=2")
    after = p.ids()
    assert len(after) == 2 and after[f"{p.name}-a-1"] == before[f"{p.name}-a-1"]


def test_config_no_interpolate_through_the_cli(project: Any) -> None:
    p = project("""\
        services:
          a:
            image: ${IMG:-busybox}
            command: ["sh", "-c", "echo $$V; sleep 300"]
            environment:
              - V=${V:-one}
        """)
    r = p.ok("config", "--no-interpolate", env={"V": "two"})
    assert "    image: ${IMG:-busybox}\n" in r.stdout and "      - V=${V:-one}\n" in r.stdout
    assert "echo $$V; sleep 300" in r.stdout and f"name: {p.name}\n" in r.stdout
    doc = json.loads(p.ok("config", "--no-interpolate", "--format", "json").stdout)
    assert doc["services"]["a"]["image"] == "${IMG:-busybox}"
    p.ok("up", "-d", env={"V": "two"})  # the same file, interpolated, runs
    (c,) = p.containers()
    env = p.daemon.api_json("GET", f"/containers/{c['Id']}/json")[1]["Config"]["Env"]
    assert "V=two" in env


def test_run_cap_add_cap_drop_and_tty_flags(project: Any) -> None:
    p = project("""\
        services:
          a:
            image: busybox
            command: ["sleep", "300"]
            cap_add: [NET_ADMIN]
        """)
    r = p.ok("run", "-d", "--cap-add", "SYS_TIME", "--cap-drop", "CHOWN", "--name", f"{p.name}-once", "a")
    assert r.stdout.strip() == f"{p.name}-once"
    info = p.daemon.api_json("GET", f"/containers/{p.name}-once/json")[1]
    assert info["HostConfig"]["CapAdd"] == ["NET_ADMIN", "SYS_TIME"] and info["HostConfig"]["CapDrop"] == ["CHOWN"]
    with open(f"/proc/{info['State']['Pid']}/status") as f:
        caps = int([line for line in f if line.startswith("CapEff:")][0].split()[1], 16)
    assert caps & (1 << 25) and caps & (1 << 12) and not caps & (1 << 0)  # SYS_TIME, NET_ADMIN in; CHOWN out
    r = p.run("run", "--rm", "-t", "-T", "a", "true")
    assert r.returncode != 0 and "--tty and --no-TTY can't be used together" in r.stderr
    p.ok("up", "-d")
    r = p.ok("exec", "-t", "-T", "a", "echo", "tty-flag-accepted")  # v2's hidden -t: a TTY is the default
    assert r.stdout.strip() == "tty-flag-accepted"
    assert p.daemon.api("DELETE", f"/containers/{p.name}-once?force=1")[0] == 204


def test_config_resolve_image_digests(project: Any, registry: Any) -> None:
    repo = f"{registry.host}/compose/pinned"
    p = project(f"""\
        services:
          a: {{image: "{repo}:1"}}
          b: {{image: "{repo}@sha256:{'b' * 64}"}}
        """)
    d = p.daemon
    assert d.api("POST", f"/images/busybox:latest/tag?repo={repo}&tag=1")[0] == 201
    status, _h, body = d.api("POST", f"/images/{repo}/push?tag=1", headers={"X-Registry-Auth": "e30="})
    assert status == 200, body
    pushed = [json.loads(line)["aux"]["Digest"] for line in body.splitlines() if b'"aux"' in line]
    assert len(pushed) == 1 and pushed[0].startswith("sha256:")
    out = p.ok("config", "--resolve-image-digests").stdout
    assert f"    image: {repo}:1@{pushed[0]}\n" in out  # asked the registry (through the daemon)
    assert f"    image: {repo}@sha256:{'b' * 64}\n" in out  # already pinned: left as it is
    model = json.loads(p.ok("config", "--no-interpolate", "--resolve-image-digests", "--format", "json").stdout)
    assert model["services"]["a"]["image"] == f"{repo}:1@{pushed[0]}"
    p.write(f"services:\n  a: {{image: \"{repo}:missing\"}}\n")
    r = p.run("config", "--resolve-image-digests")
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.startswith(f"failed to resolve digest for {repo}:missing: Error response from daemon: "), r.stderr
    d.api("DELETE", f"/images/{repo}:1")
