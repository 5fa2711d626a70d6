"""Small in-memory tar archives for tests."""

from __future__ import annotations

import io
import tarfile


def tar_bytes(*entries: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    """A tar of the given headers (added as they are) and (name, content) regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
            else:
                ti = tarfile.TarInfo(e[0])
                ti.size = len(e[1])
                tf.addfile(ti, io.BytesIO(e[1]))
    return buf.getvalue()
