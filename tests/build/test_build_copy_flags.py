"""BuildKit's COPY flags: ``--parents`` (parent directories kept, rsync's ``./`` pivot, ``**``) and ``--link``
(a layer that does not depend on what is below it, so its cache survives a change of the base)."""

from __future__ import annotations

import io
import json
import os

import pytest
from ctx_files import tar_of, write

from dockyard.build.copy_step import kept_path, parents_pivot
from helpers.daemon import TestDaemon


def test_pivot_parsing() -> None:
    assert parents_pivot("./x/./y/*.txt") == ("x", "x/y/*.txt")
    assert parents_pivot("a/b/./c") == ("a/b", "a/b/c")
    assert parents_pivot("./x/a.txt") == ("", "./x/a.txt")
    assert kept_path("x/y/b.txt", "x") == "y/b.txt"
    assert kept_path("x/a.txt", "") == "x/a.txt"


def test_copy_parents(dy: TestDaemon, ctxdir: str) -> None:
    write(ctxdir, {"x/a.txt": "xa\n", "y/a.txt": "ya\n", "x/y/b.txt": "xyb\n", "src/app/main.go": "m\n",
                   "src/lib/deep/util.go": "u\n", "src/README": "r\n",
                   "Dockerfile": "FROM busybox\n"
                                 "COPY ./x/a.txt ./y/a.txt /plain/\n"
                                 "COPY --parents ./x/a.txt ./y/a.txt /parents/\n"
                                 "COPY --parents ./x/./y/*.txt /pivot/\n"
                                 "COPY --parents src/**/*.go /go/\n"
                                 "COPY --parents x/y /dir/\n"
                                 "COPY --parents=false x/y/b.txt /off/\n"})
    os.chmod(os.path.join(ctxdir, "x"), 0o750)
    r = dy.cli("build", "-t", "cf/parents", ctxdir)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = dy.cli("run", "--rm", "cf/parents", "sh", "-c",
                 "cd / && find plain parents pivot go dir off -type f | sort && stat -c '%a %n' parents/x dir/x")
    assert out.stdout.split("\n") == [
        "dir/x/y/b.txt", "go/src/app/main.go", "go/src/lib/deep/util.go", "off/b.txt", "parents/x/a.txt",
        "parents/y/a.txt", "pivot/y/b.txt", "plain/a.txt", "750 parents/x", "750 dir/x", ""], out


def _diff_ids(dy: TestDaemon, ref: str) -> list[str]:
    return dy.api_json("GET", f"/images/{ref}/json")[1]["RootFS"]["Layers"]


def test_copy_parents_through_the_api(dy: TestDaemon) -> None:
    df = "FROM busybox\nCOPY --parents a/./b/c.txt /dst/\n"
    status, _, body = dy.api("POST", "/v1.47/build?t=cf/parents-api", tar_of({"Dockerfile": df, "a/b/c.txt": "c\n"}),
                             headers={"Content-Type": "application/x-tar"}, timeout=120)
    assert status == 200 and b"Successfully tagged" in body, body
    assert not [json.loads(x) for x in body.splitlines() if b'"error"' in x]
    assert dy.cli("run", "--rm", "cf/parents-api", "cat", "/dst/b/c.txt").stdout == "c\n"


def _build(dy: TestDaemon, ctx: str, df: str, tag: str) -> str:
    write(ctx, {"Dockerfile": df})
    r = dy.cli("build", "-t", tag, ctx)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout


def test_copy_link_layer_survives_a_base_change(dy: TestDaemon, ctxdir: str,
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    basectx = str(tmp_path_factory.mktemp("base"))
    write(ctxdir, {"app/f.txt": "payload\n"})
    _build(dy, basectx, "FROM busybox\nRUN mkdir -m 700 /app && echo one > /b\n", "cf/linkbase")
    df_link = "FROM cf/linkbase\nCOPY --link app/ /app/\nRUN cat /b /app/f.txt > /seen\n"
    df_plain = "FROM cf/linkbase\nCOPY app/ /app/\n"
    _build(dy, ctxdir, df_plain, "cf/plain1")
    _build(dy, ctxdir, df_link, "cf/link1")
    first = _diff_ids(dy, "cf/link1")
    # the base changes (other content, and no /app at all): the linked layer is the same layer, from the cache
    _build(dy, basectx, "FROM busybox\nRUN echo two > /b\n", "cf/linkbase")
    out = _build(dy, ctxdir, df_link, "cf/link2")
    steps = out.split("Step ")
    assert "Using cache" in steps[2] and "Using cache" not in steps[3], out
    second = _diff_ids(dy, "cf/link2")
    assert second[-2] == first[-2], "the linked layer does not depend on the base"
    assert second[:-2] == _diff_ids(dy, "cf/linkbase")
    assert dy.cli("run", "--rm", "cf/link2", "cat", "/seen").stdout == "two\npayload\n"
    # without --link the COPY is redone on the new base
    out = _build(dy, ctxdir, df_plain, "cf/plain2")
    assert "Using cache" not in out.split("Step ")[2], out
    # a no-change rebuild hits every step
    out = _build(dy, ctxdir, df_link, "cf/link3")
    assert out.count("Using cache") == 2 and _diff_ids(dy, "cf/link3") == second
    # a changed source is a miss
    write(ctxdir, {"app/f.txt": "changed\n"})
    out = _build(dy, ctxdir, df_link, "cf/link4")
    assert "Using cache" not in out, out
    assert dy.cli("run", "--rm", "cf/link4", "cat", "/seen").stdout == "two\nchanged\n"


def test_copy_link_writes_onto_nothing(dy: TestDaemon, ctxdir: str) -> None:
    """The base's /app (mode 700) is not consulted: the linked layer has its own /app (755), as BuildKit's."""
    write(ctxdir, {"f.txt": "x\n"})
    _build(dy, ctxdir, "FROM busybox\nRUN mkdir -m 700 /app\nCOPY --link f.txt /app/\n", "cf/onto")
    _build(dy, ctxdir, "FROM busybox\nRUN mkdir -m 700 /app\nCOPY f.txt /app/\n", "cf/onto-plain")
    stat = "stat -c %a /app"
    assert dy.cli("run", "--rm", "cf/onto", "sh", "-c", stat).stdout == "755\n"
    assert dy.cli("run", "--rm", "cf/onto-plain", "sh", "-c", stat).stdout == "700\n"
    client = dy.client()
    ctx = io.BytesIO(tar_of({"Dockerfile": "FROM busybox\nCOPY --link f.txt /l/\n", "f.txt": "py\n"}))
    img, _logs = client.images.build(fileobj=ctx, custom_context=True, tag="cf/link-py")
    assert dy.cli("run", "--rm", "cf/link-py", "cat", "/l/f.txt").stdout == "py\n"
