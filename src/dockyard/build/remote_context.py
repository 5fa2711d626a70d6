"""The ``remote`` parameter of ``POST /build``: a git repository (cloned, ``#ref:subdir`` honoured) or the URL
of a tar context or of a bare Dockerfile (downloaded), made into a context directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import urllib.request

from .context import unpack_tar
from .options import BuildError


def is_git_remote(remote: str) -> bool:
    return remote.startswith("git@") or remote.startswith("git://") or ".git" in remote.split("#")[0] \
        or remote.startswith("github.com/")


def fetch_remote(remote: str, root: str, dockerfile: str) -> None:
    """Fill the (empty, existing) directory ``root`` with the remote context; scratch files go beside it."""
    if is_git_remote(remote):
        _clone(remote, root)
        return
    if not remote.startswith(("http://", "https://")):  # dockerd's remotecontext.Detect: git, URL or nothing
        raise BuildError(f"remoteURL ({remote}) could not be recognized as URL")
    path = os.path.join(os.path.dirname(root), "remote")
    try:
        with urllib.request.urlopen(remote, timeout=60) as resp, open(path, "wb") as f:  # noqa: S310
            while chunk := resp.read(1 << 20):
                f.write(chunk)
    except (OSError, ValueError) as e:  # ValueError: a URL urllib cannot parse (http://[)
        raise BuildError(f"unable to prepare context: unable to download remote context {remote}: {e}") from None
    if tarfile.is_tarfile(path):
        with open(path, "rb") as f:
            unpack_tar(f, root)
    else:
        shutil.move(path, os.path.join(root, dockerfile or "Dockerfile"))


def _clone(remote: str, root: str) -> None:
    url, _, frag = remote.partition("#")
    ref, _, sub = frag.partition(":")
    clone = os.path.join(os.path.dirname(root), "git")
    cmd = ["git", "clone", "-q", "--recurse-submodules"]
    if ref:
        cmd += ["--branch", ref]
    r = subprocess.run([*cmd, "--depth", "1", url, clone], capture_output=True, text=True)
    if r.returncode != 0:  # a server without shallow fetches (dumb http): a full clone, as docker retries
        shutil.rmtree(clone, ignore_errors=True)
        r = subprocess.run([*cmd, url, clone], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"unable to prepare context: unable to 'git clone' to temporary context "
                         f"directory: error fetching: {r.stderr.strip()}")
    src = os.path.join(clone, sub) if sub else clone
    os.rmdir(root)
    shutil.move(src, root)
