"""A Debian-based build (debian from `image bootstrap`, no egress): useradd in RUN, COPY --chown by the names that
step created (looked up in the image's own passwd/group), USER, a python3 app as CMD, and a multi-stage copy of
its output into busybox."""

from __future__ import annotations

import os
import shutil

import pytest

from helpers.daemon import TestDaemon

DOCKERFILE = """FROM debian:bookworm AS app
RUN useradd --uid 4321 --create-home appuser && groupadd --gid 777 extra
WORKDIR /home/appuser/app
COPY --chown=appuser:extra app.py ./
USER appuser
RUN python3 app.py > /tmp/out.txt
CMD ["python3", "app.py"]

FROM busybox
COPY --from=app /tmp/out.txt /out.txt
"""

APP = "import os\nprint('uid', os.getuid(), 'gid-of-file', os.stat(__file__).st_gid)\n"


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap is not installed")
def test_debian_app_build(daemon: TestDaemon, busybox_image: str, tmp_path: object) -> None:
    res = daemon.cli("image", "bootstrap", "debian:bookworm", timeout=1100)
    assert res.returncode == 0, res.stderr
    ctx = str(tmp_path)
    for name, text in (("Dockerfile", DOCKERFILE), ("app.py", APP)):
        with open(os.path.join(ctx, name), "w") as f:
            f.write(text)
    r = daemon.cli("build", "--target", "app", "-t", "deb/app", ctx)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = daemon.cli("run", "--rm", "deb/app").stdout
    assert out == "uid 4321 gid-of-file 777\n"
    r = daemon.cli("build", "-t", "deb/final", ctx)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.count("Using cache") >= 5  # the app stage again, from the cache
    assert daemon.cli("run", "--rm", "deb/final", "cat", "/out.txt").stdout == "uid 4321 gid-of-file 777\n"
