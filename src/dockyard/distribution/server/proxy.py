"""Pull-through cache (``--proxy`` / ``proxy.remoteurl``): what the store lacks is fetched from a remote registry.

Manifests by tag are looked up upstream on every request (a tag moves) and served from the store when the
remote cannot be reached; manifests by digest and blobs are fetched once. A blob is streamed to the client as
it arrives and written through the verified blob store at the same time, so nothing waits for the whole blob
and nothing unverified is ever stored. The remote's Basic or Bearer challenge is answered with the configured
credentials (anonymous without).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

from . import protocol
from .store import RegistryStore

log = logging.getLogger("dockyard.registry.proxy")
_ACCEPT = ", ".join(sorted(protocol.MANIFEST_TYPES))


def _challenge_params(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = {}
    for part in rest.split(","):
        k, _, v = part.strip().partition("=")
        if k:
            params[k.lower()] = v.strip('"')
    return scheme.lower(), params


class RemoteRegistry:
    def __init__(self, url: str, store: RegistryStore, username: str | None, password: str | None,
                 timeout: float = 60.0) -> None:
        u = urlsplit(url if "://" in url else "https://" + url)
        self.scheme, self.netloc = u.scheme, u.netloc
        self.store = store
        self.creds = (username, password) if username else None
        self.timeout = timeout
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def _conn(self, netloc: str, scheme: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _token(self, challenge: dict[str, str], scope: str) -> str | None:
        realm = challenge.get("realm")
        if not realm:
            return None
        u = urlsplit(realm)
        q = {"scope": scope}
        if challenge.get("service"):
            q["service"] = challenge["service"]
        c = self._conn(u.netloc, u.scheme)
        headers = {}
        if self.creds:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
        try:
            c.request("GET", (u.path or "/") + "?" + urlencode(q), headers=headers)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                return None
            doc = json.loads(body)
            return str(doc.get("token") or doc.get("access_token") or "") or None
        finally:
            c.close()

    def _get(self, name: str, path: str, accept: str | None = None,
             method: str = "GET") -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        scope = f"repository:{name}:pull"
        for attempt in range(2):
            headers = {"Accept": accept} if accept else {}
            with self._lock:
                tok = self._tokens.get(scope)
            if tok:
                headers["Authorization"] = "Bearer " + tok
            elif self.creds:
                headers["Authorization"] = "Basic " + base64.b64encode(
                    f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
            c = self._conn(self.netloc, self.scheme)
            c.request(method, path, headers=headers)
            r = c.getresponse()
            if r.status == 401 and attempt == 0:
                scheme, params = _challenge_params(r.getheader("WWW-Authenticate") or "")
                r.read()
                c.close()
                if scheme == "bearer":
                    tok = self._token(params, scope)
                    if tok:
                        with self._lock:
                            self._tokens[scope] = tok
                        continue
                raise OSError(f"remote registry refused {path}: 401")
            return c, r
        raise OSError(f"remote registry refused {path}")

    def fetch_manifest(self, name: str, reference: str) -> bool:
        try:
            c, r = self._get(name, f"/v2/{name}/manifests/{reference}", _ACCEPT)
            try:
                body = r.read(protocol.MANIFEST_MAX + 1)
                if r.status != 200 or len(body) > protocol.MANIFEST_MAX:
                    return False
                media_type = r.getheader("Content-Type") or ""
            finally:
                c.close()
            self.store.put_manifest(name, reference, media_type, body, check_refs=False)
            return True
        except (OSError, http.client.HTTPException, ValueError) as e:
            log.warning("proxy: manifest %s:%s: %s", name, reference, e)
            return False
        except Exception as e:  # a manifest the remote sends that we cannot store: not cached
            log.warning("proxy: manifest %s:%s not cached: %s", name, reference, e)
            return False

    def fetch_blob(self, name: str, digest: str) -> Iterator[bytes] | None:
        try:
            c, r = self._get(name, f"/v2/{name}/blobs/{digest}")
        except (OSError, http.client.HTTPException) as e:
            log.warning("proxy: blob %s@%s: %s", name, digest, e)
            return None
        if r.status != 200:
            r.read()
            c.close()
            return None
        return self._tee(name, digest, c, r)

    def _tee(self, name: str, digest: str, c: http.client.HTTPConnection,
             r: http.client.HTTPResponse) -> Iterator[bytes]:
        w = self.store.blobs.writer()
        try:
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                w.write(b)
                yield b
            with self.store.gc_lock():
                w.commit(digest)
                self.store.link_blob(name, digest)
        except BaseException:
            w.abort()
            raise
        finally:
            c.close()
