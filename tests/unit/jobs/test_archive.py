"""EPUB uploads: zip bombs, too many files and XML entity declarations are refused with a
clear 413/400 before ebooklib or lxml opens anything; a normal EPUB still reads."""

from __future__ import annotations

import io
import zipfile

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.epubs import make_epub

from voxmesh.errors import InvalidRequest, PayloadTooLarge
from voxmesh.jobs.archive import ZipLimits, check_xml, check_zip
from voxmesh.jobs.ingest import parse_upload
from voxmesh.jobs.routes import setup_job_routes

from .conftest import Stack

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<html xmlns="http://www.w3.org/1999/xhtml"><body><p>&lol9;</p></body></html>
"""


def _rewrite(epub: bytes, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(epub))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            out.writestr(info.filename, (replace or {}).get(info.filename, src.read(info)))
        for name, data in (add or {}).items():
            out.writestr(name, data)
    return buf.getvalue()


def _chapter_name(epub: bytes) -> str:
    return next(n for n in zipfile.ZipFile(io.BytesIO(epub)).namelist() if n.endswith("c0.xhtml"))


def _bomb() -> bytes:
    """A real zip bomb: 64 MiB of zeros in ~64 KiB, inside an otherwise valid EPUB."""
    epub = make_epub([("One", "<p>Hello.</p>")])
    return _rewrite(epub, add={"EPUB/padding.bin": bytes(64 * 1024 * 1024)})


def test_normal_epub_still_reads() -> None:
    chapters = parse_upload("b.epub", make_epub([("One", "<p>Hello there.</p>")]), max_bytes=10**7)
    assert any("Hello there." in c.text for c in chapters)


def test_zip_bomb_is_413_before_decompressing() -> None:
    data = _bomb()
    assert len(data) < 1024 * 1024
    with pytest.raises(PayloadTooLarge, match=r"padding.bin.* expands \d+x \(a zip bomb\?\); the limit is 100x"):
        parse_upload("b.epub", data, max_bytes=10**7)
    with pytest.raises(PayloadTooLarge, match="expands to 67"):  # over the total as well
        check_zip(data, ZipLimits(max_uncompressed_bytes=10 * 1024 * 1024, max_ratio=10**6))


def test_too_many_files_is_413() -> None:
    data = _rewrite(make_epub([("One", "<p>Hi.</p>")]), add={f"EPUB/x{i}.txt": b"x" for i in range(60)})
    with pytest.raises(PayloadTooLarge, match=r"holds 6[0-9] files; the limit is 50"):
        parse_upload("b.epub", data, max_bytes=10**7, zip_limits=ZipLimits(max_files=50))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs_is_400(encoding: str) -> None:
    epub = make_epub([("One", "<p>Hello.</p>")])
    payload = LAUGHS if encoding == "utf-8" else LAUGHS.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")
    data = _rewrite(epub, replace={_chapter_name(epub): payload})
    with pytest.raises(InvalidRequest, match="declares XML entities"):
        parse_upload("b.epub", data, max_bytes=10**7)


def test_external_entity_and_opf_entities_are_400() -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(InvalidRequest, match="declares XML entities"):
        check_xml("content.opf", xxe)
    broken = b"<html><!ENTITY a 'b'><p>not well formed</html"
    with pytest.raises(InvalidRequest, match="declares XML entities"):
        check_xml("c.xhtml", broken)
    check_xml("ok.xhtml", b'<!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><p>fine</p></html>')


def test_not_a_zip_is_400() -> None:
    with pytest.raises(InvalidRequest, match="not a valid EPUB"):
        parse_upload("b.epub", b"PK\x03\x04 not really", max_bytes=10**7)


async def test_upload_of_a_bomb_through_the_jobs_api_is_413(stack: Stack) -> None:
    app = web.Application()
    setup_job_routes(app, stack.service)
    async with TestClient(TestServer(app)) as client:
        form = aiohttp.FormData()
        form.add_field("voice", "joe")
        form.add_field("model", "tts-1")
        form.add_field("file", _bomb(), filename="book.epub", content_type="application/epub+zip")
        resp = await client.post("/v1/jobs", data=form)
        body = await resp.json()
        assert resp.status == 413, body
        assert body["error"]["type"] == "payload_too_large" and "zip bomb" in body["error"]["message"]
