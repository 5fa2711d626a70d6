"""Where dockerd's classic builder answers a detail in a way clients rely on: the one-argument instructions keep
the whole rest of the line, the first ``dockerfile`` query value wins (docker-py sends the in-context name and
then the content), and a RUN step's stderr reaches the stream wrapped in red as dockerd writes it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ctx_files import tar_of, write

from helpers.daemon import TestDaemon


def api_build(dy: TestDaemon, query: str, files: dict[str, str]) -> tuple[int, list[dict[str, Any]], bytes]:
    status, _, body = dy.api("POST", f"/v1.47/build?{query}", tar_of(files),
                             headers={"Content-Type": "application/x-tar"}, timeout=300)
    msgs = [json.loads(ln) for ln in body.splitlines() if ln.strip()] if status == 200 else []
    return status, msgs, body


def test_one_argument_instructions_keep_the_whole_line(dy: TestDaemon, ctxdir: str) -> None:
    # docker-py's test_build_container_with_target has a line like this one (two lines joined by mistake)
    df = ("FROM busybox AS first\nRUN touch /tmp/silence\n"
          "FROM busybox\nWORKDIR /root/COPY --from=first /tmp/silence .\nUSER some user\n")
    write(ctxdir, {"Dockerfile": df})
    r = dy.cli("build", "-t", "conf/wholeline", ctxdir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    cfg = dy.api_json("GET", "/images/conf/wholeline/json")[1]["Config"]
    assert cfg["WorkingDir"] == "/root/COPY --from=first /tmp/silence ."
    assert cfg["User"] == "some user"
    write(ctxdir, {"Dockerfile": "FROM busybox\nSTOPSIGNAL SIG TERM\n"})  # one argument, but no signal
    r = dy.cli("build", ctxdir)
    assert r.returncode != 0 and "Invalid signal: SIG TERM" in r.stderr
    status, msgs, _ = api_build(dy, "t=conf/first&target=first", {"Dockerfile": df})
    assert status == 200 and "Successfully tagged conf/first:latest\n" in [m.get("stream") for m in msgs]
    for word in ("WORKDIR", "USER", "STOPSIGNAL"):
        write(ctxdir, {"Dockerfile": f"FROM busybox\n{word}\n"})
        r = dy.cli("build", ctxdir)
        assert r.returncode != 0
        assert f"dockerfile parse error on line 2: {word} requires exactly one argument" in r.stderr


def test_first_dockerfile_query_value_wins(dy: TestDaemon) -> None:
    files = {".dockerfile.abc": "FROM busybox\nCOPY . /src\nWORKDIR /src\n", "file.txt": "hello",
             ".dockerignore": ".dockerignore\n.dockerfile.abc"}
    status, msgs, body = api_build(dy, "t=conf/outside&dockerfile=.dockerfile.abc&dockerfile=FROM+busybox%0ACOPY+."
                                   "+%2Fsrc%0AWORKDIR+%2Fsrc", files)
    assert status == 200, body
    assert msgs[-1]["stream"] == "Successfully tagged conf/outside:latest\n"
    r = dy.cli("run", "--rm", "conf/outside", "ls", "-a")
    assert sorted(r.stdout.split()) == [".", "..", "file.txt"]


def test_run_stderr_reaches_the_stream_in_red(dy: TestDaemon, ctxdir: str) -> None:
    df = "FROM busybox\nRUN echo to-out && sh -c '>&2 echo to-err'\n"
    status, msgs, _ = api_build(dy, "nocache=1", {"Dockerfile": df})
    assert status == 200
    streams = [m.get("stream") for m in msgs]
    assert "to-out\n" in streams
    assert "\x1b[91mto-err\n\x1b[0m" in streams
    write(ctxdir, {"Dockerfile": df})
    r = dy.cli("build", "--no-cache", ctxdir)
    assert r.returncode == 0, r.stderr
    assert "to-err" in r.stdout + r.stderr


_LIMITS = """cd /sys/fs/cgroup
if [ -f cgroup.controllers ]; then
  echo v2; cat memory.max; cat memory.swap.max 2>/dev/null || echo none; cat cpu.weight cpu.max cpuset.cpus
else
  echo v1; cat memory/memory.limit_in_bytes; cat memory/memory.memsw.limit_in_bytes 2>/dev/null || echo none
  cat cpu/cpu.shares; echo "$(cat cpu/cpu.cfs_quota_us) $(cat cpu/cpu.cfs_period_us)"; cat cpuset/cpuset.cpus
fi
"""


def test_run_steps_get_the_build_resource_limits(dy: TestDaemon, ctxdir: str) -> None:
    """memory, memswap, cpushares, cpusetcpus, cpuperiod and cpuquota reach the RUN container's cgroup (read
    from inside the step, v1 or v2 hierarchy)."""
    df = "FROM busybox\nCOPY limits.sh /\nRUN sh /limits.sh > /limits\n"
    q = ("t=conf/limits&nocache=1&memory=67108864&memswap=100663296&cpushares=512&cpusetcpus=0"
         "&cpuperiod=50000&cpuquota=25000")
    status, msgs, body = api_build(dy, q, {"Dockerfile": df, "limits.sh": _LIMITS})
    assert status == 200, body
    assert not [m for m in msgs if "error" in m], msgs
    out = dy.cli("run", "--rm", "conf/limits", "cat", "/limits").stdout.split("\n")
    if out[0] == "v2":  # swap is memswap minus memory; shares 512 are weight 20 in runc's conversion
        assert out[1] == "67108864" and out[2] in (str(100663296 - 67108864), "none"), out
        assert out[3:6] == ["20", "25000 50000", "0"], out
    else:
        assert out[1] == "67108864" and out[2] in ("100663296", "none"), out
        assert out[3:6] == ["512", "25000 50000", "0"], out
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY limits.sh /\nRUN sh /limits.sh > /limits\n",
                   "limits.sh": _LIMITS})
    r = dy.cli("build", "--no-cache", "--memory", "48m", "-t", "conf/limits-cli", ctxdir)
    assert r.returncode == 0, r.stderr
    assert dy.cli("run", "--rm", "conf/limits-cli", "cat", "/limits").stdout.split("\n")[1] == str(48 << 20)


def test_secret_mounts_without_a_secret_from_docker_clients(dy: TestDaemon, ctxdir: str) -> None:
    """docker-py and the docker CLI's classic build send no secrets: an optional secret mount is left out (the
    step runs without the file), a required one fails the step with BuildKit's message; nothing is tagged."""
    import subprocess

    import docker

    from helpers.daemon import DOCKER

    optional = "FROM busybox\nRUN --mount=type=secret,id=tok test ! -e /run/secrets/tok && echo none > /seen\n"
    required = "FROM busybox\nRUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok\n"
    client = dy.client()
    img, _ = client.images.build(fileobj=io.BytesIO(tar_of({"Dockerfile": optional})), custom_context=True,
                                 tag="conf/nosecret")
    assert dy.cli("run", "--rm", "conf/nosecret", "cat", "/seen").stdout == "none\n"
    with pytest.raises(docker.errors.BuildError, match="secret tok: not found"):
        client.images.build(fileobj=io.BytesIO(tar_of({"Dockerfile": required})), custom_context=True,
                            tag="conf/needsecret")
    write(ctxdir, {"Dockerfile": required})
    env = dict(dy.env)
    env["DOCKER_BUILDKIT"] = "0"
    r = subprocess.run([DOCKER, "build", "-t", "conf/needsecret", ctxdir], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 1 and "secret tok: not found" in r.stderr, (r.stdout, r.stderr)
    assert dy.api_json("GET", "/images/conf/needsecret/json")[0] == 404
