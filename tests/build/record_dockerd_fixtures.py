"""Record the differential test's fixtures with a private real dockerd 20.10 (classic builder).

    .venv/bin/python tests/build/record_dockerd_fixtures.py [CASE...]      (default: every case)

Starts a dockyard test daemon (for a busybox archive) and a private dockerd (bench/engine_dockerd.py: own data
root, socket, no bridge, no iptables), loads busybox into it, builds every case of dockerd_cases.py with
DOCKER_BUILDKIT=0 and --network none (it has no bridge), writes each image's config and history to fixtures/dockerd/<case>.json, and stops both,
leaving nothing behind. Not a test: run it again only to re-record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))

from dockerd_cases import CASES  # noqa: E402
from engine_dockerd import DOCKER_CLI, PrivateDockerd  # noqa: E402

from helpers.daemon import finish_daemon, start_daemon  # noqa: E402


def write_case(root: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def main() -> int:
    d = start_daemon()
    real: PrivateDockerd | None = None
    try:
        d.load_busybox(None)
        _s, _h, archive = d.api("GET", "/images/get?names=busybox:latest", timeout=120)
        real = PrivateDockerd().start()
        real.load(archive)
        out_dir = os.path.join(HERE, "fixtures", "dockerd")
        os.makedirs(out_dir, exist_ok=True)
        names = sys.argv[1:] or list(CASES)
        for name, files in ((n, CASES[n]) for n in names):
            with tempfile.TemporaryDirectory() as ctx:
                write_case(ctx, files)
                env = dict(real.env, DOCKER_BUILDKIT="0")
                r = subprocess.run([DOCKER_CLI, "build", "--network", "none", "-t", f"case/{name}", ctx], capture_output=True,
                                   text=True, env=env, timeout=300)
                if r.returncode != 0:
                    raise RuntimeError(f"{name}: {r.stderr}")
            ins = json.loads(real.docker("image", "inspect", f"case/{name}").stdout)[0]
            with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
                json.dump({"Config": ins["Config"], "history": _history(real, f"case/{name}")}, f, indent=1,
                          sort_keys=True)
                f.write("\n")
            print("recorded", name)
    finally:
        if real is not None:
            print("dockerd cleanup:", real.stop())
        finish_daemon(d)
    return 0


def _history(real: PrivateDockerd, ref: str) -> list[dict[str, object]]:
    """The image config's history (created_by, empty_layer) through `docker save` of the image."""
    import io
    import tarfile

    r = real.docker("save", ref, timeout=120)
    tf = tarfile.open(fileobj=io.BytesIO(r.stdout))
    manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    cfg = json.load(tf.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    hist = [{"created_by": h.get("created_by", ""), "empty_layer": bool(h.get("empty_layer"))}
            for h in cfg.get("history", [])]
    return hist


if __name__ == "__main__":
    sys.exit(main())
