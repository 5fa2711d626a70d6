"""``image bootstrap``: base images made from Debian packages, so a machine without a registry works.

``busybox`` is one layer built from Debian's busybox-static binary (the installed one, or the .deb
fetched with ``apt-get download``) with an applet symlink per ``busybox --list-full`` entry.
``debian[:suite]`` is a minbase mmdebstrap (with python3) streamed straight into a layer.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable

from ..errors import InvalidParameter, SystemError_
from .service import ImageService
from .store import Image

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
_DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
         "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
         "var": 0o755}

Progress = Callable[[str], None]


def _owned_by_busybox_static(path: str) -> bool:
    res = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.startswith("busybox-static:")


def find_busybox(workdir: str, progress: Progress) -> str:
    """The busybox-static binary: installed, or extracted from the package fetched with apt."""
    if os.path.isfile("/bin/busybox") and _owned_by_busybox_static("/bin/busybox"):
        progress("Using /bin/busybox from the installed busybox-static package")
        return "/bin/busybox"
    progress("Downloading busybox-static with apt-get")
    res = subprocess.run(["apt-get", "download", "busybox-static"], cwd=workdir, capture_output=True, text=True)
    debs = [f for f in os.listdir(workdir) if f.endswith(".deb")]
    if res.returncode != 0 or not debs:
        raise SystemError_(f"apt-get download busybox-static failed: {res.stderr.strip()}")
    root = os.path.join(workdir, "pkg")
    subprocess.run(["dpkg-deb", "-x", os.path.join(workdir, debs[0]), root], check=True)
    return os.path.join(root, "bin", "busybox")


def busybox_layer(busybox: str) -> bytes:
    """The layer tar: busybox, its applet links, minimal /etc, standard dirs."""
    res = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True)
    applets = sorted({a.strip() for a in res.stdout.split() if a.strip() and a.strip() != "bin/busybox"})
    now = int(time.time())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs = dict(_DIRS)
        for a in applets:
            d = os.path.dirname(a)
            while d and d not in dirs:
                dirs[d] = 0o755
                d = os.path.dirname(d)
        for d in sorted(dirs):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, dirs[d], now
            tf.addfile(ti)
        with open(busybox, "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.mode, ti.size, ti.mtime = 0o755, len(data), now
        tf.addfile(ti, io.BytesIO(data))
        for a in applets:
            ti = tarfile.TarInfo(a)
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "/bin/busybox", 0o777, now
            tf.addfile(ti)
        for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
            raw = text.encode()
            ti = tarfile.TarInfo(name)
            ti.mode, ti.size, ti.mtime = 0o644, len(raw), now
            tf.addfile(ti, io.BytesIO(raw))
    return buf.getvalue()


def bootstrap(svc: ImageService, name: str, progress: Progress | None = None) -> Image:
    """Build and tag ``busybox[:tag]`` or ``debian[:suite]``."""
    report = progress or (lambda _msg: None)
    base, _, tag = name.partition(":")
    if base == "busybox":
        work = tempfile.mkdtemp(dir=svc.tmp_dir, prefix="bootstrap-")
        try:
            layer = busybox_layer(find_busybox(work, report))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        report("Importing layer")
        img = svc.import_tar(io.BytesIO(layer), "busybox", tag or "latest", ['CMD ["sh"]'],
                             message="dockyard image bootstrap busybox")
    elif base == "debian":
        suite = tag or "bookworm"
        if shutil.which("mmdebstrap") is None:
            raise SystemError_("mmdebstrap is not installed")
        report(f"Running mmdebstrap --variant=minbase {suite}")
        errlog = tempfile.TemporaryFile(dir=svc.tmp_dir)  # a file, so a chatty stderr cannot block it
        proc = subprocess.Popen(["mmdebstrap", "--variant=minbase", "--include=python3", "--format=tar",
                                 "--quiet", suite, "-"], stdout=subprocess.PIPE, stderr=errlog)
        assert proc.stdout is not None
        try:
            img = svc.import_tar(proc.stdout, "debian", suite, ['CMD ["bash"]'],
                                 message=f"dockyard image bootstrap debian:{suite}")
        except BaseException:
            proc.kill()
            proc.wait()
            errlog.close()
            raise
        rc = proc.wait()
        errlog.seek(0)
        err = errlog.read().decode(errors="replace")
        errlog.close()
        if rc != 0:
            svc.remove(img.id, force=True)
            raise SystemError_(f"mmdebstrap failed: {err.strip()}")
    else:
        raise InvalidParameter(f"unknown bootstrap image {name!r}: use busybox or debian[:suite]")
    for t in img.repo_tags:
        report(f"Tagged {t}")
    return img
