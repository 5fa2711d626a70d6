"""A minimal HTTP/1.1 request reader for the fake servers unit tests run."""

from __future__ import annotations

from typing import IO


def read_request(f: IO[bytes]) -> tuple[str, str, dict[str, str], bytes]:
    """(method, target, lower-cased headers, body) of the next request; EOFError when the peer closed."""
    line = f.readline()
    if not line:
        raise EOFError
    method, target, _ = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int(f.readline().strip(), 16)
            if size == 0:
                f.readline()
                break
            body += f.read(size)
            f.readline()
    return method, target, headers, body
