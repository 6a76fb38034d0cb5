"""Small protocol pieces: If headers, ranges, checksum headers, XML escaping against lxml, streamed bodies."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from infiniscale.core.checksums import MultiHasher, parse_checksum_header
from infiniscale.core.model.errors import InvalidArgument
from infiniscale.protocols.webdav import xml
from infiniscale.protocols.webdav.conditions import parse_if, submitted_tokens
from infiniscale.protocols.webdav.errors import DavError
from infiniscale.protocols.webdav.routing import Target, split_segments
from infiniscale.protocols.webdav.transfer import parse_ranges


def test_if_header_tagged_and_untagged():
    lists = parse_if('<http://h/a> (<opaquelocktoken:1> ["e"]) (Not <DAV:no-lock>)')
    assert lists[0].resource == "http://h/a" and lists[1].resource == "http://h/a"
    assert lists[0].conditions[0].token == "opaquelocktoken:1" and lists[0].conditions[1].etag == '"e"'
    assert lists[1].conditions[0].negate
    assert submitted_tokens(lists) == {"opaquelocktoken:1"}


@pytest.mark.parametrize("bad", ["", "(", "()", "(<a>", "<x>", "garbage", "([e)"])
def test_malformed_if_headers(bad):
    with pytest.raises(DavError):
        parse_if(bad)


def test_ranges():
    assert parse_ranges("bytes=0-9", 100) == [(0, 9)]
    assert parse_ranges("bytes=90-", 100) == [(90, 99)]
    assert parse_ranges("bytes=-10", 100) == [(90, 99)]
    assert parse_ranges("bytes=0-1,5-6", 100) == [(0, 1), (5, 6)]
    assert parse_ranges("bytes=200-300", 100) == []
    assert parse_ranges("bytes=9-1", 100) is None
    assert parse_ranges("items=0-1", 100) is None
    assert parse_ranges("bytes=a-b", 100) is None


def test_checksum_headers():
    assert parse_checksum_header("SHA1:ABCDEF") == ("sha1", "abcdef")
    assert parse_checksum_header("md5 00ff") == ("md5", "00ff")
    for bad in ("SHA1:", "CRC:12", "sha1:xyz", "nothing"):
        with pytest.raises(InvalidArgument):
            parse_checksum_header(bad)


def test_multihasher_large_and_small_buffers_agree():
    import hashlib
    import zlib

    data = bytes(range(256)) * 5000
    a, b = MultiHasher(), MultiHasher()
    a.update(data)
    for i in range(0, len(data), 1000):
        b.update(data[i:i + 1000])
    expected = {"sha1": hashlib.sha1(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
                "adler32": f"{zlib.adler32(data):08x}"}
    assert a.hexdigests() == b.hexdigests() == expected


def test_path_segments_refuse_escapes():
    assert split_segments(b"/a/b%20c/") == ["a", "b c"]
    for bad in (b"/a/../b", b"/%2e%2e/x", b"/a%2Fb", b"/a%00", b"/%ff"):
        with pytest.raises(DavError):
            split_segments(bad)


def test_doctype_is_refused():
    with pytest.raises(InvalidArgument):
        xml.parse(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_hrefs_and_escaped_text_parse_back(name):
    href = Target.child_href("/remote.php/dav/files/u/", name, folder=False)
    doc = f'<d:href xmlns:d="DAV:">{href}</d:href><!-- -->'.split("<!--")[0]
    parsed = etree.fromstring(doc.encode())
    from urllib.parse import unquote

    assert unquote(parsed.text) == "/remote.php/dav/files/u/" + name
    text = etree.fromstring(f"<v>{xml.escape(name)}</v>".encode()).text or ""
    assert len(text) == len(name)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_escaping_skips_only_text_with_nothing_to_escape(text):
    from xml.sax.saxutils import escape as sax_escape

    full = sax_escape(xml._INVALID_XML_CHARS.sub("\ufffd", text), {"\r": "&#13;"})
    assert xml.escape(text) == full
    assert xml.escape("a&b<c>\rd\x01") == "a&amp;b&lt;c&gt;&#13;d\ufffd"


def test_ocs_v2_maps_statuscodes_to_http():
    from infiniscale.protocols.ocs import v2_http_status

    assert [v2_http_status(c) for c in (997, 998, 996, 999, 104, 101, 102, 400, 404, 423, 1000)] == [
        401, 404, 500, 500, 403, 400, 400, 400, 404, 423, 500]


def test_a_streamed_response_ends_with_its_last_chunk():
    """The last chunk carries the end of the body: no empty message after it (one send fewer
    for every download and listing); empty chunks are skipped, an empty stream is one empty body."""
    from infiniscale.protocols.http import respond_stream

    async def stream(parts: list[bytes]) -> list[dict]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def chunks():
            for part in parts:
                yield part

        await respond_stream(send, 200, [("content-type", "text/plain")], chunks())
        return sent

    sent = asyncio.run(stream([b"a", b"", b"b", b"c"]))
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 3
    assert [(m["body"], m.get("more_body", False)) for m in sent[1:]] == [(b"a", True), (b"b", True), (b"c", False)]
    sent = asyncio.run(stream([]))
    assert [(m["body"], m.get("more_body", False)) for m in sent[1:]] == [(b"", False)]
