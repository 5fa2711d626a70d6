"""The daemon's token signing key: one EC P-256 key under the data root, made on first use.

Kept in PEM (mode 0600, written then renamed) so tokens stay valid across restarts; its key id is the
RFC 7638 thumbprint of the public key, so a token names the key that signed it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.storage.atomic import write_atomic


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    nums = key.public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _b64(nums.x), "y": _b64(nums.y)}


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638: sha256 over the required members in lexicographic order, no whitespace."""
    jwk = public_jwk(key)
    canon = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()


def load_or_create(path: str) -> ec.EllipticCurvePrivateKey:
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{path}: not an EC P-256 private key")
        return key
    except FileNotFoundError:
        pass
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_atomic(path, pem, mode=0o600)
    return key
