"""A real distribution registry (Debian's ``docker-registry``) on a free loopback port, for tests.

Modes: plain ``http``; ``tls`` (a CA made here, the server's certificate for 127.0.0.1 and localhost, and a
``certs.d`` directory with ``HOST:PORT/ca.crt`` that a daemon is pointed at); ``basic`` (htpasswd, bcrypt);
``token`` (Bearer tokens from :class:`TokenServer`, a small token server signing ES256 JWTs that the registry
trusts through its ``rootcertbundle``). Each registry has its own root dir under the given tmp dir and is
stopped (process killed, files removed) by :meth:`Registry.stop`.

    with running_registry(tmp, "token", users={"alice": "secret"}) as reg:
        reg.host        # "127.0.0.1:PORT"
        reg.certs_dir   # a certs.d dir (tls mode), for the daemon's --registry-certs-dir
        reg.tokens      # the TokenServer (token mode): .issued, .expires_in, .refuse
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from helpers.hostprobe import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"


# -- certificates -------------------------------------------------------------------------------------------
class CertAuthority:
    """A throwaway CA that signs server and client certificates (PEM files in ``dir``)."""

    def __init__(self, directory: str, name: str = "dockyard test CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = os.path.join(directory, "ca.crt")
        with open(self.cert_path, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, dns: list[str] | None = None, ips: list[str] | None = None,
              client: bool = False) -> tuple[str, str]:
        """(cert path, key path) of a certificate for ``dns``/``ips`` (or a client certificate)."""
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(self.cert.subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                   else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns or []]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        cpath = os.path.join(self.dir, f"{name}.crt")
        kpath = os.path.join(self.dir, f"{name}.key")
        with open(cpath, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(kpath, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
        os.chmod(kpath, 0o600)
        return cpath, kpath


# -- token server -------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key: Any) -> str:
    """The key ID distribution's token auth looks a JWT's ``kid`` up by (libtrust's fingerprint)."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


class TokenServer:
    """Docker's token protocol (GET ``/token`` with Basic credentials, POST ``/token`` for OAuth2 password and
    refresh_token grants), granting every requested action to known users and ``pull`` to anonymous ones
    when ``anonymous_pull``. Tokens are ES256 JWTs the registry verifies by ``kid``."""

    def __init__(self, directory: str, users: dict[str, str], service: str = "test-registry",
                 expires_in: int = 300, anonymous_pull: bool = False, exp_skew: int = 0) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users = dict(users)
        self.service = service
        self.issuer = "dockyard-test-issuer"
        self.expires_in = expires_in
        self.anonymous_pull = anonymous_pull
        # distribution accepts a token up to 60 s past its ``exp`` (clock-skew leeway): skew=60 makes a token
        # really stop working after ``expires_in`` seconds
        self.exp_skew = exp_skew
        self.issued: list[dict[str, Any]] = []  # one entry per token handed out: user, scopes, grant
        self.refresh_tokens: dict[str, str] = {}
        self.refuse = False  # answer 401 to everything (a token server that turned hostile)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = libtrust_key_id(self.key.public_key())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256()))
        os.makedirs(directory, exist_ok=True)
        self.bundle = os.path.join(directory, "token-signer.pem")
        with open(self.bundle, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(self, subject: str, scopes: list[str], expires_in: int) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils

        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) >= 3:
                actions = [a for a in parts[-1].split(",") if a]
                if not subject and self.anonymous_pull:
                    actions = [a for a in actions if a == "pull"]
                elif not subject:
                    actions = []
                access.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": actions})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "kid": self.kid}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + expires_in - self.exp_skew,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ts = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _basic_user(self) -> str | None:
                auth = self.headers.get("Authorization", "")
                if not auth.lower().startswith("basic "):
                    return ""
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                return user if ts.users.get(user) == pw else None

            def _grant(self, user: str, scopes: list[str], grant: str, offline: bool) -> None:
                token = ts.sign(user, scopes, ts.expires_in)
                body: dict[str, Any] = {"token": token, "access_token": token, "expires_in": ts.expires_in,
                                        "issued_at": datetime.datetime.now(datetime.UTC).isoformat()}
                if offline and user:
                    rt = os.urandom(16).hex()
                    ts.refresh_tokens[rt] = user
                    body["refresh_token"] = rt
                with ts._lock:
                    ts.issued.append({"user": user, "scopes": scopes, "grant": grant})
                self._answer(200, body)

            def do_GET(self) -> None:  # noqa: N802
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                user = self._basic_user()
                if ts.refuse or user is None:
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED",
                                                   "message": "incorrect username or password"}]})
                    return
                self._grant(user, q.get("scope", []), "basic", q.get("offline_token", [""])[0] == "true")

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
                grant = form.get("grant_type", [""])[0]
                user: str | None = None
                if grant == "password":
                    name = form.get("username", [""])[0]
                    user = name if ts.users.get(name) == form.get("password", [""])[0] else None
                elif grant == "refresh_token":
                    user = ts.refresh_tokens.get(form.get("refresh_token", [""])[0])
                if ts.refuse or user is None:
                    self._answer(401, {"error": "invalid_grant",
                                       "errors": [{"code": "UNAUTHORIZED",
                                                   "message": "incorrect username or password"}]})
                    return
                self._grant(user, scopes, grant, form.get("access_type", [""])[0] == "offline")

        return Handler


# -- the registry -------------------------------------------------------------------------------------------
class Registry:
    """One ``docker-registry serve`` process on 127.0.0.1:<free port>."""

    def __init__(self, tmp: str, mode: str = "http", users: dict[str, str] | None = None,
                 token_expires_in: int = 300, anonymous_pull: bool = False, client_ca: bool = False,
                 token_exp_skew: int = 0, bind: str = "127.0.0.1") -> None:
        if mode not in ("http", "tls", "basic", "token"):
            raise ValueError(f"unknown registry mode {mode!r}")
        self.mode = mode
        self.bind = bind  # another local address (a test daemon's bridge gateway) makes a non-loopback registry
        self.dir = tempfile.mkdtemp(prefix=f"reg-{mode}-", dir=tmp)
        self.root = os.path.join(self.dir, "data")
        self.users = dict(users or {"testuser": "testpassword"})
        self.port = 0
        self.host = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.dir, "registry.log")
        self.certs_dir = os.path.join(self.dir, "certs.d")
        self.ca: CertAuthority | None = None
        self.tokens: TokenServer | None = None
        self.client_ca = client_ca
        self.client_cert: tuple[str, str] | None = None
        self._token_expires_in = token_expires_in
        self._anonymous_pull = anonymous_pull
        self._token_exp_skew = token_exp_skew

    @property
    def scheme(self) -> str:
        return "https" if self.mode == "tls" else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def _config(self) -> str:
        lines = ["version: 0.1", "log:", "  level: warn", "  accesslog:", "    disabled: true", "storage:",
                 "  filesystem:", f"    rootdirectory: {self.root}", "  delete:", "    enabled: true",
                 "  maintenance:", "    uploadpurging:", "      enabled: false", "http:",
                 f"  addr: {self.bind}:{self.port}", "  headers:", "    X-Content-Type-Options: [nosniff]"]
        # foreign (non-distributable) layers may name http(s) URLs, so tests can serve them from loopback
        lines = ["validation:", "  manifests:", "    urls:", "      allow:", "        - ^https?://", *lines]
        if self.mode == "tls":
            assert self.ca is not None
            cert, key = self.ca.issue(f"server-{self.port}", dns=["localhost"], ips=sorted({"127.0.0.1", self.bind}))
            lines += ["  tls:", f"    certificate: {cert}", f"    key: {key}"]
            if self.client_ca:
                lines += ["    clientcas:", f"      - {self.ca.cert_path}"]
        if self.mode == "basic":
            htpasswd = os.path.join(self.dir, "htpasswd")
            with open(htpasswd, "w") as f:
                for user, pw in self.users.items():
                    out = subprocess.run(["htpasswd", "-Bbn", user, pw], capture_output=True, text=True,
                                         check=True).stdout.strip()
                    f.write(out + "\n")
            lines += ["auth:", "  htpasswd:", "    realm: basic-realm", f"    path: {htpasswd}"]
        if self.mode == "token":
            assert self.tokens is not None
            lines += ["auth:", "  token:", f"    realm: {self.tokens.realm}", f"    service: {self.tokens.service}",
                      f"    issuer: {self.tokens.issuer}", f"    rootcertbundle: {self.tokens.bundle}"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> Registry:
        if self.mode == "tls" and self.ca is None:
            self.ca = CertAuthority(os.path.join(self.dir, "ca"))
        if self.mode == "token" and self.tokens is None:
            self.tokens = TokenServer(os.path.join(self.dir, "token"), self.users,
                                      expires_in=self._token_expires_in, anonymous_pull=self._anonymous_pull,
                                      exp_skew=self._token_exp_skew)
        for _attempt in range(5):
            self.port = free_port()
            self.host = f"{self.bind}:{self.port}"
            if self.mode == "tls":
                assert self.ca is not None
                d = os.path.join(self.certs_dir, self.host)
                os.makedirs(d, exist_ok=True)
                shutil.copy(self.ca.cert_path, os.path.join(d, "ca.crt"))
                if self.client_ca:
                    cert, key = self.ca.issue(f"client-{self.port}", client=True)
                    shutil.copy(cert, os.path.join(d, "client.cert"))
                    shutil.copy(key, os.path.join(d, "client.key"))
                    self.client_cert = (cert, key)
            cfg = os.path.join(self.dir, "config.yml")
            with open(cfg, "w") as f:
                f.write(self._config())
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection((self.bind, self.port), timeout=0.5):
                        return self
                except OSError:
                    time.sleep(0.05)
            self._kill()  # the port was taken meanwhile (or the registry did not come up): try another
        raise RuntimeError(f"docker-registry did not start:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        self._kill()
        if self.tokens is not None:
            self.tokens.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- direct protocol access (to check what a push stored, or to seed content) ----------------------------
    def _auth_header(self, scope: str) -> dict[str, str]:
        user, pw = next(iter(self.users.items()))
        if self.mode == "basic":
            return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}
        if self.mode == "token":
            assert self.tokens is not None
            return {"Authorization": "Bearer " + self.tokens.sign(user, [scope], 300)}
        return {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                scope: str = "") -> tuple[int, dict[str, str], bytes]:
        import ssl

        hdrs = dict(headers or {})
        if scope:
            hdrs.update(self._auth_header(scope))
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=hdrs)
        ctx = None
        if self.mode == "tls":
            assert self.ca is not None
            ctx = ssl.create_default_context(cafile=self.ca.cert_path)
            if self.client_cert:
                ctx.load_cert_chain(*self.client_cert)
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = f"repository:{repo}:pull,push"
        status, hdrs, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"", scope=scope)
        assert status == 202, (status, body)
        loc = hdrs["location"]
        if loc.startswith("/"):
            loc = self.url + loc
        sep = "&" if "?" in loc else "?"
        path = loc[len(self.url):] + f"{sep}digest={digest}"
        status, _, body = self.request("PUT", path, data, {"Content-Type": "application/octet-stream"},
                                       scope=scope)
        assert status == 201, (status, body)
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        status, hdrs, body = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data, {"Content-Type": media_type},
                                          scope=f"repository:{repo}:pull,push")
        assert status == 201, (status, body)
        return hdrs.get("docker-content-digest", "")

    def get_manifest(self, repo: str, ref: str, accept: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept},
                            scope=f"repository:{repo}:pull")


@contextmanager
def running_registry(tmp: str, mode: str = "http", **kw: Any) -> Iterator[Registry]:
    reg = Registry(tmp, mode, **kw).start()
    try:
        yield reg
    finally:
        reg.stop()


# -- images made for a registry -----------------------------------------------------------------------------
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def busybox_layer() -> bytes:
    """A tar of a runnable root: Debian's static busybox as /bin/busybox, /bin/sh and /bin/cat linking to it."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        d = tarfile.TarInfo("bin")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tf.addfile(d)
        with open("/bin/busybox", "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo("bin/busybox")
        ti.size = len(data)
        ti.mode = 0o755
        tf.addfile(ti, io.BytesIO(data))
        for name in ("sh", "cat", "ls", "echo"):
            ln = tarfile.TarInfo(f"bin/{name}")
            ln.type = tarfile.SYMTYPE
            ln.linkname = "busybox"
            tf.addfile(ln)
    return buf.getvalue()


def files_layer(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def image_config(diff_ids: list[str], arch: str = "amd64", cmd: list[str] | None = None) -> bytes:
    cfg = {"architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(len(diff_ids))]}
    return json.dumps(cfg, sort_keys=True).encode()


def seed_image(reg: Registry, repo: str, tag: str, layer_tars: list[bytes], arch: str = "amd64",
               cmd: list[str] | None = None) -> dict[str, Any]:
    """Push an image made of ``layer_tars`` (gzipped here) straight through the registry protocol; returns
    its digests: ``manifest``, ``config`` (the image ID), ``layers`` (compressed), ``diff_ids``."""
    import gzip

    compressed = [gzip.compress(t, compresslevel=1, mtime=0) for t in layer_tars]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layer_tars]
    layer_digests = [reg.put_blob(repo, c) for c in compressed]
    cfg = image_config(diff_ids, arch, cmd)
    cfg_digest = reg.put_blob(repo, cfg)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": cfg_digest, "size": len(cfg)},
        "layers": [{"mediaType": DOCKER_LAYER, "digest": d, "size": len(c)}
                   for d, c in zip(layer_digests, compressed, strict=True)]}, indent=3).encode()
    digest = reg.put_manifest(repo, tag, manifest, DOCKER_MANIFEST)
    return {"manifest": digest or "sha256:" + hashlib.sha256(manifest).hexdigest(), "config": cfg_digest,
            "layers": layer_digests, "diff_ids": diff_ids, "manifest_bytes": manifest, "size": len(manifest),
            "compressed": compressed}


def seed_index(reg: Registry, repo: str, tag: str, per_arch: dict[str, list[bytes]]) -> dict[str, Any]:
    """An OCI index over one image per architecture (each also pushed under ``tag-ARCH``)."""
    entries = []
    out: dict[str, Any] = {}
    for arch, tars in per_arch.items():
        img = seed_image(reg, repo, f"{tag}-{arch}", tars, arch=arch)
        out[arch] = img
        entries.append({"mediaType": DOCKER_MANIFEST, "digest": img["manifest"], "size": img["size"],
                        "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    out["index"] = reg.put_manifest(repo, tag, index, OCI_INDEX) or "sha256:" + hashlib.sha256(index).hexdigest()
    return out


# -- a fault-injecting proxy ---------------------------------------------------------------------------------
class FaultProxy:
    """A loopback TCP proxy in front of a registry that can cut or slow the responses to requests whose path
    contains ``match``: ``cuts`` connections are closed after ``cut_after`` response bytes; ``rate`` (bytes/s)
    throttles matching responses. ``requests`` records every request head it forwarded."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.match = ""
        self.cut_after = 0
        self.cuts = 0
        self.rate = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._conns += [client, upstream]
            state: dict[str, Any] = {"matching": False, "sent": 0}
            threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, state), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, state: dict[str, Any]) -> None:
        f = client.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        raise EOFError
                    head += line
                text = head.decode("latin-1")
                with self._lock:
                    self.requests.append(text)
                    state["matching"] = bool(self.match) and self.match in text.split("\r\n", 1)[0]
                    state["sent"] = 0
                upstream.sendall(head)
                length = 0
                for h in text.split("\r\n")[1:]:
                    if h.lower().startswith("content-length:"):
                        length = int(h.split(":", 1)[1])
                while length > 0:
                    chunk = f.read(min(length, 65536))
                    if not chunk:
                        raise EOFError
                    upstream.sendall(chunk)
                    length -= len(chunk)
        except (EOFError, OSError, ValueError):
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _down(self, upstream: socket.socket, client: socket.socket, state: dict[str, Any]) -> None:
        try:
            while True:
                data = upstream.recv(16384)
                if not data:
                    break
                if state["matching"]:
                    if self.rate:
                        time.sleep(len(data) / self.rate)
                    with self._lock:
                        cut = self.cuts > 0 and state["sent"] + len(data) > self.cut_after
                        if cut:
                            self.cuts -= 1
                    if cut:
                        keep = max(0, self.cut_after - state["sent"])
                        client.sendall(data[:keep])
                        break
                    state["sent"] += len(data)
                client.sendall(data)
        except OSError:
            pass
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
