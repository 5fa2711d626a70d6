"""Build contexts for tests: files written into a directory, or packed into the tar a client uploads."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Mapping


def _bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def write(root: str, files: Mapping[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(_bytes(content))


def tar_of(files: Mapping[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, content in files.items():
            data = _bytes(content)
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()
