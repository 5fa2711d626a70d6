"""The registry client service behind ``/images/create?fromImage``, ``/images/{name}/push``, ``/auth``,
``/distribution/{name}/json`` and ``/images/search``.

It tries a reference's endpoints in docker's order (mirrors, then the registry; https, then http for insecure
registries) and falls back to the next one when docker would: the endpoint could not be reached, or (for a
mirror, or an endpoint with another to fall back to) it did not know the repository or refused access.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from ..errors import InvalidParameter, NotFound, Unauthorized
from ..images.reference import Reference, parse_normalized, validate_tag
from . import spec
from .auth import ANONYMOUS, Credentials, TokenCache
from .metadata import BlobMetadata
from .ports import Blobs, EventSink, ImageRecords, ImageResolver, Layers
from .progress import Emit, message
from .pull import PullNotFound, Resolved, pull_image, raise_for
from .push import push_tag
from .session import DialError, Pools, RegistryError, RepoSession
from .transport import Endpoint, RegistrySettings, Transport


class DistributionService:
    def __init__(self, settings: RegistrySettings, images: ImageRecords, layers: Layers, blobs: Blobs,
                 resolver: ImageResolver, metadata: BlobMetadata, events: EventSink | None = None) -> None:
        self.settings = settings
        self.transport = Transport(settings)
        self.pools = Pools(self.transport, maxsize=max(16, settings.max_concurrent_downloads * 2,
                                                       settings.max_concurrent_uploads * 2))
        self.tokens = TokenCache()
        self.images = images
        self.layers = layers
        self.blobs = blobs
        self.resolver = resolver
        self.metadata = metadata
        self.events = events

    # -- helpers ------------------------------------------------------------------------------------------
    def session(self, ep: Endpoint, repo: str, creds: Credentials, actions: tuple[str, ...] = ("pull",),
                extra_scopes: tuple[str, ...] = ()) -> RepoSession:
        return RepoSession(self.pools, self.tokens, ep, repo, creds, actions, extra_scopes)

    @staticmethod
    def _new_holder() -> str:
        return f"tmp:pull-{secrets.token_hex(8)}"

    def _with_endpoints(self, ref: Reference, attempt: Callable[[Endpoint], Any], mirrors: bool = True) -> Any:
        """Run ``attempt`` against each endpoint until one succeeds or fails in a way docker does not fall
        back from; the last error is raised. Pushes never go to mirrors."""
        endpoints = [ep for ep in self.transport.endpoints(ref.domain) if mirrors or not ep.mirror]
        last: BaseException | None = None
        for n, ep in enumerate(endpoints):
            more = n + 1 < len(endpoints)
            try:
                result = attempt(ep)
                self.transport.remember(ep)
                return result
            except DialError as e:
                last = e
            except (PullNotFound, RegistryError) as e:
                code = getattr(e.__cause__, "code", None) if isinstance(e, PullNotFound) else e.code
                if not more or not (ep.mirror or code in ("UNAUTHORIZED", "MANIFEST_UNKNOWN", "NAME_UNKNOWN")):
                    raise
                last = e
        assert last is not None
        raise last

    def _remember_pull(self, ep: Endpoint) -> Callable[[Reference, Resolved, list[str]], None]:
        def remember(ref: Reference, res: Resolved, diff_ids: list[str]) -> None:
            for desc, diff in zip(res.manifest.layers, diff_ids, strict=True):
                if desc.media_type not in spec.FOREIGN_LAYER_TYPES:
                    self.metadata.add(diff, desc.digest, desc.size, desc.media_type, ep.host, ref.path)

        return remember

    # -- pull ---------------------------------------------------------------------------------------------
    def pull(self, from_image: str, tag: str, platform: str, creds: Credentials, emit: Emit) -> None:
        """``POST /images/create?fromImage=&tag=&platform=``: a tag or digest in either; neither means every
        tag of the repository (``pull -a``)."""
        ref = parse_normalized(from_image)
        if tag:
            if spec.is_digest(tag):
                ref = Reference(ref.domain, ref.path, None, tag)
            elif tag.startswith("sha256:") or ":" in tag:
                raise InvalidParameter(f"invalid reference format: {from_image}:{tag}")
            else:
                ref = Reference(ref.domain, ref.path, validate_tag(tag), None)
        plat = spec.parse_platform(platform) if platform else None
        all_tags = not ref.tag and not ref.digest

        def attempt(ep: Endpoint) -> None:
            sess = self.session(ep, ref.path, creds)
            sess.authenticate()  # docker's ping of /v2/: learns the auth challenge before the first request
            if not all_tags:
                res = pull_image(sess, ref, plat, self.images, self.layers, self.blobs, emit,
                                 self.settings.max_concurrent_downloads, self.settings.max_download_attempts,
                                 self._new_holder, self.events, self._remember_pull(ep))
                shown = ref.familiar() if ref.digest else ref.with_default_tag().familiar()
                emit(message(f"Status: Downloaded newer image for {shown}" if res.new
                             else f"Status: Image is up to date for {shown}"))
                return
            new = False
            for t in self.list_tags(sess, ref):
                res = pull_image(sess, ref.with_tag(t), plat, self.images, self.layers, self.blobs, emit,
                                 self.settings.max_concurrent_downloads, self.settings.max_download_attempts,
                                 self._new_holder, self.events, self._remember_pull(ep))
                new = new or res.new
            emit(message(f"Status: Downloaded newer image for {ref.familiar_name}" if new
                         else f"Status: Image is up to date for {ref.familiar_name}"))

        self._with_endpoints(ref, attempt)

    def pull_for_build(self, ref: str, auth: dict[str, Any] | None, progress: Emit, platform: str = "") -> None:
        """The builder's pull (a FROM not present, ``--pull``, ``FROM --platform``): ``auth`` is the build's
        X-Registry-Config, AuthConfigs by registry (docker.io under its index URL)."""
        from .auth import credentials_from_json

        named = parse_normalized(ref)
        creds = ANONYMOUS
        if auth:
            keys = ["https://index.docker.io/v1/", "index.docker.io", "docker.io"] if named.domain == "docker.io" \
                else [named.domain, f"https://{named.domain}", f"http://{named.domain}"]
            for k in keys:
                if isinstance(auth.get(k), dict):
                    creds = credentials_from_json(auth[k])
                    break
        if named.digest:
            self.pull(named.name, named.digest, platform, creds, progress)
        else:
            self.pull(named.name, named.tag or "latest", platform, creds, progress)

    def list_tags(self, sess: RepoSession, ref: Reference) -> list[str]:
        """Every tag of the repository, following ``Link`` pagination."""
        tags: list[str] = []
        path = f"/v2/{sess.repo}/tags/list"
        import json
        import re

        for _ in range(1000):
            resp = sess.request("GET", path)
            if resp.status != 200:
                try:
                    raise_for(resp)
                except RegistryError as e:
                    from .pull import translate_pull_error

                    raise translate_pull_error(e, ref) from e
            doc = json.loads(resp.read_all())
            tags += [str(t) for t in doc.get("tags") or []]
            m = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", resp.headers.get("link", ""))
            if not m:
                break
            path = m.group(1)
        return tags


    # -- push ---------------------------------------------------------------------------------------------
    def push(self, name: str, tag: str, creds: Credentials, emit: Emit, platform: str = "") -> None:
        """``POST /images/{name}/push?tag=&platform=``: one tag, or every local tag of the repository when none.

        Images here are single-platform, so ``platform`` (docker's multi-platform selector) is a check, as
        dockerd's graph-driver store makes it: an image of another platform is refused, nothing is pushed."""
        want = spec.parse_platform_arg(platform) if platform else None
        ref = parse_normalized(name)
        if ref.digest:
            raise InvalidParameter("cannot push a digest reference")
        if tag and ref.tag and tag != ref.tag:
            raise InvalidParameter(f"invalid reference format: {name}:{tag}")
        tag = tag or ref.tag or ""
        repo = Reference(ref.domain, ref.path)
        tags = [validate_tag(tag)] if tag else self.images.tags_of(repo.name)
        targets = []
        for t in tags:
            try:
                img = self.resolver.resolve(repo.with_tag(t).familiar())
            except NotFound:
                img = None
            if img is None or not self.images.exists(img.id):
                raise NotFound(f"An image does not exist locally with the tag: {repo.familiar_name}")
            targets.append((repo.with_tag(t), img))
        if not targets:
            raise NotFound(f"An image does not exist locally with the tag: {repo.familiar_name}")
        if want is not None:
            for t_ref, img in targets:
                cfg = json.loads(self.blobs.read_bytes(img.id))
                actual = spec.normalize_platform(str(cfg.get("os", "")), str(cfg.get("architecture", "")),
                                                 str(cfg.get("variant", "")))
                if (actual.os, actual.architecture, actual.variant) != (want.os, want.architecture, want.variant):
                    raise NotFound(f"image with reference {t_ref.familiar()} was found but does not match the "
                                   f"specified platform: wanted {want}, actual: {actual}")

        def attempt(ep: Endpoint) -> None:
            mounts = tuple(f"repository:{r}:pull" for r in self._mount_sources(targets, ep.host, repo.path))
            sess = self.session(ep, repo.path, creds, ("pull", "push"), mounts)
            sess.authenticate()
            emit(message(f"The push refers to repository [{repo.name}]"))
            for t_ref, img in targets:
                push_tag(sess, ep.host, t_ref, img.id, list(img.diff_ids), self.blobs, self.layers, self.metadata, emit,
                         self.settings.max_concurrent_uploads, self._set_digest)
            if self.events is not None:
                for t_ref, _img in targets:
                    self.events.publish("image", "push", t_ref.familiar(), {"name": t_ref.familiar()})

        self._with_endpoints(Reference(ref.domain, ref.path, None, None), attempt, mirrors=False)

    def _set_digest(self, ref: Reference, image_id: str) -> None:
        self.images.set_ref(ref, image_id)

    def _mount_sources(self, targets: list[Any], registry: str, repo: str) -> list[str]:
        out: list[str] = []
        for _ref, img in targets:
            for diff in img.diff_ids:
                for known in self.metadata.compressed(diff):
                    for other in self.metadata.repos(known.digest, registry):
                        if other != repo and other not in out:
                            out.append(other)
        return out[:8]

    # -- login --------------------------------------------------------------------------------------------
    def login(self, auth: dict[str, Any]) -> dict[str, str]:
        """``POST /auth``: check the credentials against the registry; a refresh token comes back as
        ``IdentityToken`` when the token server issues one."""
        from .auth import credentials_from_json
        from .session import fetch_token, parse_challenges, parse_errors

        server = str(auth.get("serveraddress") or "")
        creds = credentials_from_json(auth)
        domain = _login_domain(server)
        last: BaseException | None = None
        for ep in self.transport.endpoints(domain):
            if ep.mirror:
                continue
            sess = self.session(ep, "", creds)
            url = ep.base + "/v2/"
            try:
                resp = sess._send("GET", "/v2/", {}, None)
                body = resp.read_all()
            except DialError as e:
                last = e
                continue
            self.transport.remember(ep)
            if resp.status == 200:
                return {"Status": "Login Succeeded", "IdentityToken": ""}
            if resp.status != 401:
                raise parse_errors(resp.status, body)
            challenge = resp.headers.get("www-authenticate", "")
            for ch in parse_challenges(challenge):
                if ch.scheme == "basic":
                    from .auth import basic_header

                    r2 = sess._send("GET", "/v2/", {"Authorization": basic_header(creds)}, None)
                    r2.read_all()
                    if r2.status == 200:
                        return {"Status": "Login Succeeded", "IdentityToken": ""}
                    raise Unauthorized(f"login attempt to {url} failed with status: {r2.status} "
                                       f"{_status_text(r2.status)}")
                if ch.scheme == "bearer":
                    try:
                        tok = fetch_token(self.pools, ch.params, [], creds, ep, offline=not creds.identity_token)
                    except RegistryError as e:
                        raise Unauthorized(f'Get "{url}": {e}') from None
                    value = str(tok.get("token") or tok.get("access_token") or "")
                    r2 = sess._send("GET", "/v2/", {"Authorization": f"Bearer {value}"}, None)
                    r2.read_all()
                    if r2.status != 200:
                        raise Unauthorized(f"login attempt to {url} failed with status: {r2.status} "
                                           f"{_status_text(r2.status)}")
                    return {"Status": "Login Succeeded", "IdentityToken": str(tok.get("refresh_token") or "")}
            raise Unauthorized(f"login attempt to {url} failed with status: 401 Unauthorized")
        assert last is not None
        raise last

    # -- distribution inspect -----------------------------------------------------------------------------
    def inspect(self, name: str, creds: Credentials) -> dict[str, Any]:
        """``GET /distribution/{name}/json``: the descriptor a name resolves to and its platforms."""
        import json

        from .pull import fetch_blob_bytes, fetch_manifest, translate_pull_error

        ref = parse_normalized(name)
        if not ref.digest:
            ref = ref.with_default_tag()

        def attempt(ep: Endpoint) -> dict[str, Any]:
            sess = self.session(ep, ref.path, creds)
            sess.authenticate()
            try:
                top = fetch_manifest(sess, ref.digest or ref.tag or "latest")
            except RegistryError as e:
                raise translate_pull_error(e, ref) from e
            if top.media_type in spec.SCHEMA1:
                raise InvalidParameter(spec.SCHEMA1_REFUSED.format(ref=str(ref)))
            platforms: list[dict[str, str]] = []
            if top.media_type in spec.INDEXES:
                for d in spec.parse_index(top.raw, top.media_type).manifests:
                    if d.platform is not None and d.platform.os != "unknown":
                        p = {"architecture": d.platform.architecture, "os": d.platform.os}
                        if d.platform.variant:
                            p["variant"] = d.platform.variant
                        platforms.append(p)
            else:
                m = spec.parse_manifest(top.raw, top.media_type)
                cfg = json.loads(fetch_blob_bytes(sess, m.config))
                p = {"architecture": str(cfg.get("architecture", "")), "os": str(cfg.get("os", ""))}
                if cfg.get("variant"):
                    p["variant"] = str(cfg["variant"])
                platforms.append(p)
            return {"Descriptor": {"mediaType": top.media_type, "digest": top.digest, "size": len(top.raw)},
                    "Platforms": platforms}

        result: dict[str, Any] = self._with_endpoints(ref, attempt)
        return result

    # -- import from a URL --------------------------------------------------------------------------------
    def open_url(self, url: str, emit: Emit) -> Any:
        """A tar at an http(s) URL as a stream with docker's ``Downloading from`` progress (``docker import
        URL``); the first message goes out once the server answered, so a dead URL is an HTTP error."""
        from .urlfetch import open_url

        return open_url(url, emit)

    # -- search -------------------------------------------------------------------------------------------
    def search(self, term: str, limit: int, filters: dict[str, list[str]], creds: Credentials) -> list[Any]:
        """``GET /images/search``: the registry's v1 search endpoint (``/v1/search?q=&n=``)."""
        import json

        for key in filters:
            if key not in ("is-official", "is-automated", "stars"):
                raise InvalidParameter(f"invalid filter '{key}'")
        if limit and not 1 <= limit <= 100:
            raise InvalidParameter(f"limit {limit} is outside the range of [1, 100]")
        domain, _, rest = term.partition("/") if "/" in term else ("", "", term)
        if not domain or ("." not in domain and ":" not in domain and domain != "localhost"):
            domain, rest = "docker.io", term
        index_host = "index.docker.io" if domain == "docker.io" else domain
        eps = [ep for ep in self.transport.endpoints(index_host if domain != "docker.io" else "search.invalid")
               if not ep.mirror] if domain != "docker.io" else [Endpoint("https://index.docker.io", index_host, True)]
        last: BaseException | None = None
        for ep in eps:
            sess = self.session(ep, "", creds)
            path = f"/v1/search?q={_q(rest)}&n={limit or 25}"
            try:
                resp = sess.request("GET", path)
            except DialError as e:
                last = e
                continue
            body = resp.read_all()
            if resp.status != 200:
                raise parse_search_error(resp.status, body)
            doc = json.loads(body)
            results = [r for r in doc.get("results") or [] if isinstance(r, dict)]
            return _filter_search(results, filters)[: limit or 25]
        assert last is not None
        raise last


def _q(s: str) -> str:
    import urllib.parse

    return urllib.parse.quote(s, safe="")


def parse_search_error(status: int, body: bytes) -> Exception:
    from .session import parse_errors

    return parse_errors(status, body)


def _filter_search(results: list[dict[str, Any]], filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        ok = True
        for key, vals in filters.items():
            for v in vals:
                if key == "stars":
                    try:
                        ok = ok and int(r.get("star_count") or 0) >= int(v)
                    except ValueError:
                        raise InvalidParameter(f"invalid filter 'stars={v}'") from None
                elif key in ("is-official", "is-automated"):
                    if v not in ("true", "false"):
                        raise InvalidParameter(f"invalid filter '{key}={v}'")
                    field = "is_official" if key == "is-official" else "is_automated"
                    ok = ok and bool(r.get(field)) == (v == "true")
        if ok:
            out.append({"name": r.get("name", ""), "description": r.get("description", ""),
                        "star_count": int(r.get("star_count") or 0), "is_official": bool(r.get("is_official")),
                        "is_automated": bool(r.get("is_automated"))})
    return out


def _status_text(code: int) -> str:
    import http

    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return ""


def _login_domain(server: str) -> str:
    s = server.strip()
    if not s or s.rstrip("/") in ("https://index.docker.io/v1", "index.docker.io", "docker.io",
                                  "registry-1.docker.io", "https://registry-1.docker.io"):
        return "docker.io"
    s = s.removeprefix("https://").removeprefix("http://")
    return s.split("/", 1)[0]


def credentials(header: str | None) -> Credentials:
    from .auth import decode_registry_auth

    return decode_registry_auth(header) if header else ANONYMOUS
