"""The distribution spec's error codes, each with the status it is answered with (one table)."""

from __future__ import annotations

import json
from typing import Any

STATUS: dict[str, int] = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "RANGE_INVALID": 416,
    "PAYLOAD_TOO_LARGE": 413,
    "UNAVAILABLE": 503,
}

# the codes that are ours, not the spec's, are answered with a spec code in the body
_BODY_CODE = {"RANGE_INVALID": "BLOB_UPLOAD_INVALID", "PAYLOAD_TOO_LARGE": "MANIFEST_INVALID",
              "UNAVAILABLE": "UNAVAILABLE"}


class RegistryError(Exception):
    """One spec error: ``code`` picks the status; ``headers`` are added to the answer (e.g. a challenge)."""

    def __init__(self, code: str, message: str, detail: Any = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or []

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def body(self) -> bytes:
        err: dict[str, Any] = {"code": _BODY_CODE.get(self.code, self.code), "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return json.dumps({"errors": [err]}).encode()
