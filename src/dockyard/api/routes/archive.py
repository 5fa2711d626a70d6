"""/containers/{id}/archive: stat (HEAD), download (GET) and upload (PUT) of paths inside a container."""

from __future__ import annotations

from dockyard.api.context import Services
from dockyard.api.request import Request
from dockyard.api.responses import Empty, Stream
from dockyard.api.router import Router
from dockyard.containers import archive, archive_extract
from dockyard.errors import InvalidParameter

STAT_HEADER = "X-Docker-Container-Path-Stat"


def _path(req: Request) -> str:
    path = req.q("path") or ""
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    return path


def register(r: Router, s: Services) -> None:
    @r.head("/containers/{id}/archive")
    def stat_path(req: Request) -> Empty:
        st = archive.stat_container_path(s.containers, req.params["id"], _path(req))
        return Empty(200, {STAT_HEADER: st.header()})

    @r.get("/containers/{id}/archive")
    def get_archive(req: Request) -> Stream:
        st, stream = archive.archive_container_path(s.containers, req.params["id"], _path(req))
        return Stream(stream, "application/x-tar", headers={STAT_HEADER: st.header()})

    @r.put("/containers/{id}/archive")
    def put_archive(req: Request) -> Empty:
        path = _path(req)
        archive_extract.extract_to_container(s.containers, req.params["id"], path, req.body_stream(),
                                     s.config.data_root, req.q_bool("noOverwriteDirNonDir"),
                                     req.q_bool("copyUIDGID"))
        return Empty(200)
