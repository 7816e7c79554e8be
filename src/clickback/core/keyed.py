"""HMAC-SHA256 with the key prepared once.

The click path computes two MACs per click (the click ID's, the visitor key). `hmac.digest` asks
OpenSSL to set up an HMAC context for every call, which costs 3-4 us; hashing the key's two padded
blocks once (RFC 2104) leaves two hash copies per message, about 1 us. Same bytes as `hmac`.
"""

import hashlib

_BLOCK = 64  # SHA-256's block size, in bytes
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class HmacSha256:
    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()
