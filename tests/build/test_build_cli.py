"""Builds end to end through the dockyard CLI: the classic stream, the image config, RUN in real containers,
the cache (hits, content invalidation, across a daemon restart), multi-stage, failures leaving nothing behind."""

from __future__ import annotations

import os
import time

from ctx_files import write

from helpers.daemon import TestDaemon


def build(dy: TestDaemon, root: str, *args: str) -> tuple[int, str, str]:
    r = dy.cli("build", *args, root)
    return r.returncode, r.stdout, r.stderr


def inspect(dy: TestDaemon, ref: str) -> dict:
    status, body = dy.api_json("GET", f"/images/{ref}/json")
    assert status == 200, body
    return body


def containers(dy: TestDaemon) -> list[dict]:
    status, body = dy.api_json("GET", "/containers/json?all=1")
    assert status == 200
    return body


def test_basic_build_stream_and_config(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nENV A=1 B=\"two words\"\nWORKDIR /app\nCOPY hello.txt .\n"
                                 "RUN echo built-$A > /built && cat hello.txt\nUSER 1000:1000\nEXPOSE 8080 53/udp\n"
                                 "LABEL org.x=y\nVOLUME /data\nSTOPSIGNAL SIGINT\nENTRYPOINT [\"/bin/sh\"]\n"
                                 "CMD echo $A\n",
                   "hello.txt": "hello from the context\n"})
    code, out, err = build(dy, ctxdir, "-t", "bt/basic:1")
    assert code == 0, (out, err)
    assert "Step 1/12 : FROM busybox" in out and "Step 5/12 : RUN echo built-$A > /built && cat hello.txt" in out
    assert " ---> Running in " in out and "Removing intermediate container " in out
    env_step = out.split("Step 2/12 : ")[1].split("Step 3/12")[0].splitlines()
    assert env_step[1].startswith(" ---> Running in ") and env_step[2].startswith("Removing intermediate container")
    assert "hello from the context" in out
    assert "Successfully built " in out and "Successfully tagged bt/basic:1" in out
    img = inspect(dy, "bt/basic:1")
    cfg = img["Config"]
    assert "A=1" in cfg["Env"] and "B=two words" in cfg["Env"]
    assert cfg["WorkingDir"] == "/app" and cfg["User"] == "1000:1000"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"org.x": "y"} and cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Entrypoint"] == ["/bin/sh"] and cfg["Cmd"] == ["/bin/sh", "-c", "echo $A"]
    r = dy.cli("run", "--rm", "--entrypoint", "cat", "bt/basic:1", "/built", "/app/hello.txt")
    assert r.returncode == 0 and r.stdout == "built-1\nhello from the context\n", r
    r = dy.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", "bt/basic:1")
    assert "/bin/sh -c #(nop)  ENV A=1 B=two words" in r.stdout
    assert "/bin/sh -c echo built-$A > /built && cat hello.txt" in r.stdout
    # no intermediate container is left (rm defaults to true)
    assert not [c for c in containers(dy) if c["Image"].startswith("sha256:")]


def test_cache_hits_and_content_invalidation(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\n",
                   "a.txt": "one\n"})
    code, out, err = build(dy, ctxdir, "-t", "bt/cache")
    assert code == 0, (out, err)
    first = inspect(dy, "bt/cache")["Id"]
    code, out, _ = build(dy, ctxdir, "-t", "bt/cache")
    assert code == 0 and out.count(" ---> Using cache") == 2 and "Running in" not in out
    assert inspect(dy, "bt/cache")["Id"] == first
    os.utime(os.path.join(ctxdir, "a.txt"), (time.time() + 100, time.time() + 100))  # touch: still a hit
    code, out, _ = build(dy, ctxdir, "-t", "bt/cache")
    assert out.count(" ---> Using cache") == 2 and inspect(dy, "bt/cache")["Id"] == first
    write(ctxdir, {"a.txt": "two\n"})
    code, out, _ = build(dy, ctxdir, "-t", "bt/cache")
    assert code == 0 and "Using cache" not in out and "Running in" in out
    assert inspect(dy, "bt/cache")["Id"] != first
    code, out, _ = build(dy, ctxdir, "--no-cache", "-t", "bt/cache")
    assert code == 0 and "Using cache" not in out


def test_failed_run_reports_docker_message_and_tags_nothing(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo before\nRUN exit 3\n"})
    before = {c["Id"] for c in containers(dy)}
    code, out, err = build(dy, ctxdir, "-t", "bt/fail", "--force-rm")
    assert code == 3, (out, err)
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in err
    status, _ = dy.api_json("GET", "/images/bt/fail/json")
    assert status == 404
    assert {c["Id"] for c in containers(dy)} == before


def test_parse_error_names_the_line(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN true\nFOO bar\n"})
    code, out, err = build(dy, ctxdir)
    assert code == 1
    assert "dockerfile parse error on line 3: unknown instruction: FOO" in err


def test_multistage_target_and_copy_from(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox AS base\nRUN echo base > /base\n"
                                 "FROM busybox AS unused\nRUN echo should-not-run && exit 1\n"
                                 "FROM busybox AS final\nCOPY --from=base /base /from-base\n"
                                 "RUN cat /from-base\n"
                                 "FROM final AS extra\nRUN echo extra\n"})
    code, out, err = build(dy, ctxdir, "--target", "final", "-t", "bt/multi")
    assert code == 0, (out, err)
    assert "should-not-run" not in out.replace("RUN echo should-not-run", "") and "extra" not in out
    r = dy.cli("run", "--rm", "bt/multi", "cat", "/from-base")
    assert r.stdout == "base\n"


def test_cache_survives_daemon_restart(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo restart > /r\nCMD [\"cat\", \"/r\"]\n"})
    iid = os.path.join(ctxdir, "iid")
    code, out, _ = build(dy, ctxdir, "-t", "bt/restart", "--iidfile", iid)
    assert code == 0
    with open(iid) as f:
        assert f.read() == inspect(dy, "bt/restart")["Id"]
    dy.restart()
    code, out, _ = build(dy, ctxdir, "-t", "bt/restart")
    assert code == 0 and out.count("Using cache") == 2 and "Running in" not in out


def test_cache_from_limits_reuse_to_those_images(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo cachefrom > /c\n"})
    code, out, _ = build(dy, ctxdir, "-t", "bt/cachefrom")
    assert code == 0
    code, out, _ = build(dy, ctxdir, "--cache-from", "busybox:latest")
    assert code == 0 and "Using cache" not in out  # busybox does not lead to the cached RUN step
    code, out, _ = build(dy, ctxdir, "--cache-from", "bt/cachefrom")
    assert code == 0 and "Using cache" in out
