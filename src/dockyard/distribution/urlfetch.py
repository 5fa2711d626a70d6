"""``docker import URL``: the daemon fetches the tar over http(s) and streams it into the image service."""

from __future__ import annotations

import urllib.parse
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as URLLib3Error

from ..errors import InvalidParameter
from .progress import Emit, Meter, message
from .session import DialError, _go_dial_text


class URLStream:
    def __init__(self, resp: urllib3.BaseHTTPResponse, meter: Meter | None) -> None:
        self.resp = resp
        self.meter = meter
        self.done = 0

    def read(self, n: int = -1) -> bytes:
        data = bytes(self.resp.read(1 << 20 if n is None or n < 0 else n, decode_content=False))
        self.done += len(data)
        if self.meter is not None:
            self.meter.update(self.done, force=not data)
        return data

    def close(self) -> None:
        self.resp.release_conn()


def open_url(url: str, emit: Emit) -> Any:
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise InvalidParameter(f"unsupported import source {url!r}: only http and https URLs or - (the body)")
    try:
        resp = urllib3.request("GET", url, preload_content=False, decode_content=False, redirect=True,
                               retries=urllib3.Retry(total=0, redirect=5),
                               timeout=urllib3.Timeout(connect=10.0, read=120.0))
    except (URLLib3Error, OSError) as e:
        raise DialError(_go_dial_text("GET", url, u.netloc, e)) from e
    if resp.status != 200:
        resp.release_conn()
        raise InvalidParameter(f'Get "{url}": unexpected status {resp.status}')
    total = int(resp.headers.get("content-length") or 0)
    emit(message(f"Downloading from {url}"))
    return URLStream(resp, Meter(emit, "", "Importing", total) if total else None)
