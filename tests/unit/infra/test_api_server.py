"""The pure parts of infra.api_server: chunked request bodies and their framing."""

from __future__ import annotations

import io

import pytest

from infra.api_server import BadChunkedBody, is_chunked, read_chunked


@pytest.mark.parametrize(
    ("wire", "body", "rest"),
    [
        (b"5\r\nhello\r\n0\r\n\r\nNEXT", b"hello", b"NEXT"),
        (b"3\r\nab\n\r\n2;name=value\r\nde\r\n0\r\n\r\n", b"ab\nde", b""),
        (b"A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nGET /", b"0123456789", b"GET /"),
        (b"0\r\n\r\n", b"", b""),
        (b"4\nwiki\n0\n\n", b"wiki", b""),  # bare LF line ends, as lenient servers read them
    ],
)
def test_read_chunked_returns_the_body_and_stops_after_the_trailer(
    wire: bytes, body: bytes, rest: bytes
) -> None:
    stream = io.BytesIO(wire)
    assert read_chunked(stream) == body
    assert stream.read() == rest  # the next request starts exactly here


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\n",  # not hex
        b"5\r\nhel",  # shorter than its size
        b"5\r\nhelloXX0\r\n\r\n",  # no line end after the data
        b"5\r\nhello\r\n",  # no last chunk
        b"0\r\nX-Trailer: t\r\n",  # trailer section not ended
        b"",  # nothing at all
        b"-1\r\n",  # negative size
    ],
)
def test_read_chunked_refuses_a_malformed_body(wire: bytes) -> None:
    with pytest.raises(BadChunkedBody):
        read_chunked(io.BytesIO(wire))


def test_read_chunked_refuses_a_body_over_the_limit() -> None:
    with pytest.raises(BadChunkedBody, match="larger than 8"):
        read_chunked(io.BytesIO(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), max_bytes=8)
    assert read_chunked(io.BytesIO(b"5\r\nhello\r\n0\r\n\r\n"), max_bytes=5) == b"hello"


@pytest.mark.parametrize(
    ("header", "chunked"),
    [
        (None, False),
        ("", False),
        ("chunked", True),
        ("Chunked", True),
        ("gzip, chunked", True),
        ("chunked, gzip", False),  # framing is the last coding
        ("identity", False),
    ],
)
def test_is_chunked_reads_the_last_transfer_coding(header: str | None, chunked: bool) -> None:
    assert is_chunked(header) is chunked
