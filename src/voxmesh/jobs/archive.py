"""Safety checks on uploaded archives (EPUB) before any parser opens them.

A zip is refused before a byte is decompressed when it has more than ``max_files`` entries,
declares more than ``max_uncompressed_bytes`` in all, or any entry (or the whole) expands
more than ``max_ratio`` times (a zip bomb): 413 with what was found and the limit. Python's
``zipfile`` never reads past an entry's declared size, so the declared sizes bind.

XML inside (container, OPF, NCX, XHTML, SVG) is parsed with ``defusedxml`` first: any
entity declaration (billion laughs, external entities) is refused with 400, so lxml (used by
ebooklib) never sees one. Content documents that are not well-formed XML are scanned for
``<!ENTITY`` (UTF-8 and UTF-16) instead.

Limits: nested archives are not opened (an EPUB has none), so they count only as bytes.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from voxmesh.errors import InvalidRequest, PayloadTooLarge

__all__ = ["ZipLimits", "check_epub", "check_xml", "check_zip"]

_XML_SUFFIXES = (".xml", ".opf", ".ncx", ".xhtml", ".html", ".htm", ".svg")
_ENTITY = b"<!ENTITY"


@dataclass(frozen=True)
class ZipLimits:
    max_uncompressed_bytes: int = 100 * 1024 * 1024
    max_files: int = 2_000
    max_ratio: float = 100.0


def check_zip(data: bytes, limits: ZipLimits, *, what: str = "EPUB") -> zipfile.ZipFile:
    """Open ``data`` as a zip after checking it against ``limits``; returns the open archive."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidRequest(f"not a valid {what} file: {exc}", param="file") from exc
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise PayloadTooLarge(f"the {what} holds {len(infos)} files; the limit is {limits.max_files}")
    total = sum(i.file_size for i in infos)
    if total > limits.max_uncompressed_bytes:
        raise PayloadTooLarge(f"the {what} expands to {total} bytes; the limit is {limits.max_uncompressed_bytes}")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise PayloadTooLarge(f"{info.filename!r} in the {what} expands {ratio:.0f}x "
                                  f"(a zip bomb?); the limit is {limits.max_ratio:g}x")  # fmt: skip
    if total > 1024 * 1024 and total / max(len(data), 1) > limits.max_ratio:
        raise PayloadTooLarge(f"the {what} expands {total / len(data):.0f}x; the limit is {limits.max_ratio:g}x")
    return archive


def check_xml(name: str, data: bytes) -> None:
    """Refuse XML with entity declarations (400); well-formedness is the parser's business."""
    try:
        fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidRequest(f"{name!r} declares XML entities ({type(exc).__name__}); they are not allowed",
                             param="file") from exc  # fmt: skip
    except (ParseError, ValueError):
        utf16 = _ENTITY.decode().encode("utf-16-le")
        if _ENTITY in data.upper() or utf16 in data or _ENTITY.decode().encode("utf-16-be") in data:
            raise InvalidRequest(f"{name!r} declares XML entities; they are not allowed", param="file") from None


def check_epub(data: bytes, limits: ZipLimits) -> None:
    """Every check above on an EPUB upload."""
    archive = check_zip(data, limits)
    with archive:
        for info in archive.infolist():
            if info.filename.lower().endswith(_XML_SUFFIXES):
                try:
                    check_xml(info.filename, archive.read(info))
                except (zipfile.BadZipFile, RuntimeError, OSError, EOFError) as exc:
                    raise InvalidRequest(f"cannot read {info.filename!r} in the EPUB: {exc}", param="file") from exc
