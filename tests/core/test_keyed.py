import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from clickback.core.keyed import HmacSha256


@given(key=st.binary(min_size=0, max_size=200), message=st.binary(max_size=300))
def test_same_bytes_as_the_standard_library_hmac(key: bytes, message: bytes) -> None:
    assert HmacSha256(key).digest(message) == hmac.digest(key, message, hashlib.sha256)


def test_one_prepared_key_serves_many_messages() -> None:
    mac = HmacSha256(b"k" * 32)
    assert [mac.digest(m) for m in (b"a", b"b", b"a")] == [
        hmac.digest(b"k" * 32, m, hashlib.sha256) for m in (b"a", b"b", b"a")
    ]
