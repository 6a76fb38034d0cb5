"""Text out of file content, for search: plain text, PDF (poppler's pdftotext, in a subprocess with
a time limit), OpenDocument and Office Open XML documents (their XML parts, read with limits so a
zip or XML bomb costs nothing). Everything here takes bytes and returns text; it never raises for
bad input, it returns what it could read ("" at worst)."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable

from lxml import etree

log = logging.getLogger("infiniscale.search")

MAX_TEXT = 1 << 20  # characters kept per file
MAX_PART = 32 << 20  # bytes read from one part of a zip container
PDF_TIMEOUT_S = 20.0

ODF = "application/vnd.oasis.opendocument."
OOXML_PARTS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (r"word/document\.xml",
                                                                               r"word/(header|footer)\d*\.xml"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (r"xl/sharedStrings\.xml",
                                                                         r"xl/worksheets/sheet\d+\.xml"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (r"ppt/slides/slide\d+\.xml",),
}
# elements after which a word ends even without white space in the XML
BREAKS = {"p", "h", "tab", "br", "line-break", "s", "t", "c", "si", "tc", "row", "table-cell", "cr"}


def extractable(media_type: str) -> bool:
    return (media_type.startswith("text/") or media_type == "application/pdf" or media_type.startswith(ODF)
            or media_type in OOXML_PARTS or media_type in ("application/json", "application/xml"))


def extract_text(media_type: str, data: bytes) -> str:
    try:
        if media_type == "application/pdf":
            return _pdf(data)
        if media_type.startswith(ODF):
            return _zip_xml(data, (r"content\.xml",))
        if media_type in OOXML_PARTS:
            return _zip_xml(data, OOXML_PARTS[media_type])
        if extractable(media_type):
            return _plain(data)
    except (OSError, ValueError, zipfile.BadZipFile, etree.Error, subprocess.SubprocessError) as exc:
        log.info("no text from a %s file: %s", media_type, exc)
    return ""


def _plain(data: bytes) -> str:
    head = data[: MAX_TEXT * 4]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("utf-8", errors="ignore") if _mostly_utf8(head) else head.decode("latin-1")
    return text[:MAX_TEXT]


def _mostly_utf8(data: bytes) -> bool:
    return len(data.decode("utf-8", errors="ignore")) > len(data) * 0.6


def _pdf(data: bytes) -> str:
    tool = shutil.which("pdftotext")
    if tool is None:
        log.warning("pdftotext (Debian poppler-utils) is missing: PDF content is not searchable")
        return ""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(data)
        f.flush()
        done = subprocess.run([tool, "-q", "-enc", "UTF-8", f.name, "-"], capture_output=True, timeout=PDF_TIMEOUT_S,
                              check=False, env={"PATH": os.environ.get("PATH", "")})
    return done.stdout[: MAX_TEXT * 4].decode("utf-8", errors="ignore")[:MAX_TEXT]


def _zip_xml(data: bytes, patterns: Iterable[str]) -> str:
    wanted = [re.compile(p) for p in patterns]
    out: list[str] = []
    size = 0
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = sorted((n for n in z.namelist() if any(w.fullmatch(n) for w in wanted)), key=_natural)
        for name in names:
            with z.open(name) as part:
                raw = part.read(MAX_PART + 1)
            if len(raw) > MAX_PART:
                raw = raw[:MAX_PART]
            for piece in _xml_text(raw):
                out.append(piece)
                size += len(piece)
                if size >= MAX_TEXT:
                    return "".join(out)[:MAX_TEXT]
    return "".join(out)


def _natural(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _xml_text(raw: bytes) -> Iterable[str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    root = etree.fromstring(raw, parser)
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            if el.text:
                yield el.text
            continue
        if isinstance(el.tag, str) and etree.QName(el).localname in BREAKS:
            yield " "
        if el.tail:
            yield el.tail
