"""A real `dockyard registry serve` process for tests: own root, a free port, killed (with its workers) at the end.

Also: TLS material made on the fly (a CA, a server certificate for 127.0.0.1, a client certificate), htpasswd
files written by Debian's ``htpasswd -B``, and a small HTTP client that keeps the answer's headers.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

VENV_BIN = os.path.dirname(sys.executable)
DOCKYARD = os.path.join(VENV_BIN, "dockyard")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def code(self) -> str:
        return str(self.json()["errors"][0]["code"])


class RegistryProcess:
    def __init__(self, root: str, args: list[str] | None = None, log: str | None = None) -> None:
        self.root = root
        self.args = args or []
        self.log = log or root.rstrip("/") + ".log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = ""
        self.port = 0
        self.scheme = "http"
        self.ssl_context: ssl.SSLContext | None = None
        self.auth: str | None = None

    def start(self, addr: str | None = "127.0.0.1:0", timeout: float = 30) -> RegistryProcess:
        """``addr=None``: neither --addr nor --root is passed (a config file gives them)."""
        os.makedirs(self.root, exist_ok=True)
        logf = open(self.log, "ab")  # noqa: SIM115 - the child holds it
        where = ["--addr", addr, "--root", self.root] if addr is not None else []
        args = [DOCKYARD, "registry", "serve", *where, *self.args]
        self.proc = subprocess.Popen(args, stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            for line in reversed(lines):
                if line.startswith("dockyard registry listening on "):
                    url = line.split()[4]
                    self.scheme, _, hostport = url.partition("://")
                    self.host, _, port = hostport.rpartition(":")
                    self.port = int(port)
                    if self._ready():
                        return self
                    break
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited {self.proc.returncode}: {self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"registry did not start: {self.tail()}")

    def _ready(self) -> bool:
        try:
            self.request("GET", "/v2/", auth=False)
            return True
        except (OSError, http.client.HTTPException):
            return False

    def tail(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.addr}"

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # the workers are in the same process group: make sure none outlives the master
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def conn(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            ctx = self.ssl_context or ssl._create_unverified_context()  # tests that check trust set their own
            return http.client.HTTPSConnection(self.host, self.port, timeout=60, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                auth: bool = True) -> Answer:
        h = dict(headers or {})
        if auth and self.auth and "Authorization" not in h:
            h["Authorization"] = self.auth
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            c.close()

    def push_blob(self, repo: str, data: bytes) -> str:
        d = sha(data)
        a = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data)
        assert a.status == 201, (a.status, a.body)
        return d

    def push_manifest(self, repo: str, ref: str, doc: dict[str, Any],
                      media_type: str = "application/vnd.oci.image.manifest.v1+json") -> tuple[str, Answer]:
        body = json.dumps(doc).encode()
        a = self.request("PUT", f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": media_type})
        return sha(body), a

    def push_image(self, repo: str, tag: str, layer: bytes = b"layer", config: bytes | None = None) -> str:
        config = config or json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                                          "diff_ids": []}}).encode()
        cd = self.push_blob(repo, config)
        ld = self.push_blob(repo, layer)
        digest, a = self.push_manifest(repo, tag, image_manifest(cd, len(config), ld, len(layer)))
        assert a.status == 201, (a.status, a.body)
        return digest


def image_manifest(config_digest: str, config_size: int, layer_digest: str, layer_size: int,
                   **extra: Any) -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                        "size": layer_size}], **extra}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_htpasswd(path: str, users: dict[str, str]) -> None:
    """With Debian's ``htpasswd -B`` (bcrypt), the format users bring."""
    first = True
    for user, pw in users.items():
        args = ["htpasswd", "-B", "-b"] + (["-c"] if first else []) + [path, user, pw]
        subprocess.run(args, check=True, capture_output=True)
        first = False


@dataclass
class TLSFiles:
    dir: str
    ca: str
    cert: str
    key: str
    client_cert: str
    client_key: str


def make_tls(d: str) -> TLSFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(d, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(path: str, data: bytes) -> str:
        with open(path, "wb") as f:
            f.write(data)
        return path

    def pem_key(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(name("test ca")).issuer_name(name("test ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn: str, usage: Any, san: list[x509.GeneralName] | None) -> tuple[bytes, bytes]:
        k = key()
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject).public_key(k.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), pem_key(k)

    scert, skey = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH,
                       [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    ccert, ckey = leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    return TLSFiles(d, write(os.path.join(d, "ca.crt"), ca.public_bytes(serialization.Encoding.PEM)),
                    write(os.path.join(d, "server.crt"), scert), write(os.path.join(d, "server.key"), skey),
                    write(os.path.join(d, "client.cert"), ccert), write(os.path.join(d, "client.key"), ckey))


def skopeo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_token_key(path: str, kind: str = "ec") -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    k: Any = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    with open(path, "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
    return path


def make_oci_layout(d: str, files: dict[str, bytes], tag: str = "latest") -> str:
    """An OCI image layout with one uncompressed layer holding ``files``; returns the manifest digest."""
    import io
    import tarfile

    blobs = os.path.join(d, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes) -> str:
        digest = sha(data)
        with open(os.path.join(blobs, digest[7:]), "wb") as f:
            f.write(data)
        return digest

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    layer = buf.getvalue()
    ld = put(layer)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
    cd = put(config)
    manifest = json.dumps(image_manifest(cd, len(config), ld, len(layer))).encode()
    md = put(manifest)
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      "digest": md, "size": len(manifest),
                                                      "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    return md


def blobs_consistent(root: str) -> list[str]:
    """Blob files whose content does not hash to their name (should be none)."""
    bad = []
    bdir = os.path.join(root, "blobs", "sha256")
    for name in os.listdir(bdir):
        if name.startswith("."):
            continue
        h = hashlib.sha256()
        with open(os.path.join(bdir, name), "rb") as f:
            while b := f.read(1 << 20):
                h.update(b)
        if h.hexdigest() != name:
            bad.append(name)
    return bad
