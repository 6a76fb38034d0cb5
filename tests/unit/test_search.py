"""Search parts without a server: KQL parsing and compiling, the tantivy index, text extraction."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

import pytest

from infiniscale.core import kql
from infiniscale.core.kql import And, KqlError, Not, Or, Restriction
from infiniscale.core.ports.search import IndexDoc, Visibility
from infiniscale.core.search import compile_query
from infiniscale.core.search_query import Below, Exact, NamePattern, Range, Words
from infiniscale.drivers.extract import extract_text
from infiniscale.drivers.search_tantivy import TantivyIndex
from tests import documents

# ---------------------------------------------------------------------- KQL


def test_what_the_web_client_sends_parses():
    q = kql.parse('(name:"*rep*" OR content:"rep") AND mediatype:("document" OR "pdf") AND mtime:last 7 days '
                  'AND scope:s$p!n')
    assert isinstance(q, And)
    names, media, mtime, scope = q.parts
    assert names == Or((Restriction("name", ":", "*rep*", True), Restriction("content", ":", "rep", True)))
    assert media == Or((Restriction("mediatype", ":", "document", True), Restriction("mediatype", ":", "pdf", True)))
    assert mtime == Restriction("mtime", ":", "last 7 days")  # unquoted keyword of three words
    assert scope == Restriction("scope", ":", "s$p!n")


def test_adjacent_terms_of_one_property_are_alternatives_others_all_apply():
    assert kql.parse("tag:a tag:b") == Or((Restriction("tag", ":", "a"), Restriction("tag", ":", "b")))
    assert kql.parse("tag:a AND tag:b") == And((Restriction("tag", ":", "a"), Restriction("tag", ":", "b")))
    assert kql.parse("a b") == And((Restriction("", ":", "a"), Restriction("", ":", "b")))
    assert kql.parse("a OR b c") == Or((Restriction("", ":", "a"),
                                        And((Restriction("", ":", "b"), Restriction("", ":", "c")))))


def test_not_minus_comparisons_and_groups():
    assert kql.parse("NOT x -y") == And((Not(Restriction("", ":", "x")), Not(Restriction("", ":", "y"))))
    assert kql.parse("size>=10") == Restriction("size", ">=", "10")
    assert kql.parse('name:(a OR "b c")') == Or((Restriction("name", ":", "a"), Restriction("name", ":", "b c", True)))
    assert kql.parse("Name:X") == Restriction("name", ":", "X")  # property names ignore case


@pytest.mark.parametrize("bad", ["", "   ", "AND x", "x OR", "name:", "(a", "a)", '"open', "(" * 40 + "a" + ")" * 40])
def test_malformed_queries_are_refused_with_a_reason(bad):
    with pytest.raises(KqlError) as err:
        kql.parse(bad)
    assert str(err.value)


def test_compiling_maps_properties_to_index_queries():
    now = datetime.datetime(2026, 11, 25, 15, 0, tzinfo=datetime.UTC)
    day = 24 * 3600 * 10**9
    midnight = int(datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC).timestamp()) * 10**9
    assert compile_query("mtime:today", now=now) == Range("mtime_ns", midnight, midnight + day)
    assert compile_query('mtime:"last 7 days"', now=now) == Range("mtime_ns", midnight - 6 * day, midnight + day)
    assert compile_query("mtime>=2026-01-01T00:00:00Z", now=now).lo == 1767225600 * 10**9
    assert compile_query("size<1KiB") == Range("size", None, 1024)
    assert compile_query("size>1kb") == Range("size", 1001, None)
    assert compile_query("type:2") == Exact("kind", "folder")
    assert compile_query("mediatype:pdf") == Exact("media_group", "pdf")
    assert compile_query("mediatype:file") == Not(Exact("media_type", "httpd/unix-directory"))
    assert compile_query("tag:Finance") == Exact("tags", "Finance")
    assert compile_query('name:"*rep*"') == NamePattern("*rep*")
    assert compile_query("report") == Or((NamePattern("report"), Words("name", "report")))
    assert compile_query('content:"two words"') == Words("content", "two words", phrase=True)
    assert compile_query("scope:x", lambda v: Below("s", v)) == Below("s", "x")
    for bad in ("mtime:someday", "size:lots", "type:3", "color:red", "name>3", "hidden:maybe"):
        with pytest.raises(KqlError):
            compile_query(bad)


# ---------------------------------------------------------------------- the index


def doc(space: str, node: str, name: str, *, above: tuple[str, ...] = (), kind: str = "file", content: str = "",
        tags: tuple[str, ...] = (), size: int = 10, mtime: int = 1, media: str = "text/plain") -> IndexDoc:
    above = above or (space,)
    return IndexDoc(space_id=space, node_id=node, parent_id=above[-1], ancestors=(*above, node),
                    name=name, kind=kind, media_type=media, media_groups=("document",) if media == "text/plain" else (),
                    mtime_ns=mtime, size=size, tags=tags, content=content)


@pytest.fixture
def index(tmp_path: Path) -> TantivyIndex:
    ix = TantivyIndex(str(tmp_path / "search"))
    ix.upsert([
        doc("s1", "n1", "Annual Report 2024.txt", content="the quick zebrafish jumps", tags=("Finance",), size=500),
        doc("s1", "d1", "Projects", kind="folder", media="httpd/unix-directory", size=0),
        doc("s1", "n2", "plan.txt", above=("s1", "d1"), content="roadmap for the zebrafish tank", mtime=50),
        doc("s2", "n3", "zebrafish.txt", content="another space"),
    ])
    ix.commit()
    return ix


def ids(result) -> list[str]:
    hits, _total = result
    return sorted(h.node_id for h in hits)


def test_queries_find_by_name_words_patterns_typos_content_and_fields(index):
    v = Visibility(("s1",))
    assert ids(index.search(compile_query("report"), v, 10)) == ["n1"]  # a word of the name
    assert ids(index.search(compile_query("rep"), v, 10)) == ["n1"]  # the start of a word
    assert ids(index.search(compile_query("reprot"), v, 10)) == ["n1"]  # one typo
    assert ids(index.search(compile_query('name:"*nual rep*"'), v, 10)) == ["n1"]  # inside the name
    assert ids(index.search(compile_query('name:"*reprot*"'), v, 10)) == ["n1"]
    assert ids(index.search(compile_query("content:zebrafish"), v, 10)) == ["n1", "n2"]
    assert ids(index.search(compile_query("content:zebrafihs"), v, 10)) == ["n1", "n2"]
    assert ids(index.search(compile_query('content:"quick zebrafish"'), v, 10)) == ["n1"]
    assert ids(index.search(compile_query('content:"zebrafish quick"'), v, 10)) == []
    assert ids(index.search(compile_query("tag:finance"), v, 10)) == ["n1"]
    assert ids(index.search(compile_query("type:folder"), v, 10)) == ["d1"]
    assert ids(index.search(compile_query("mediatype:document AND size>100"), v, 10)) == ["n1"]
    assert ids(index.search(compile_query("content:zebrafish NOT tag:finance"), v, 10)) == ["n2"]
    assert ids(index.search(compile_query("content:zebrafish"), v, 10, offset=1))[0] in ("n1", "n2")


def test_results_stay_inside_what_is_visible(index):
    assert ids(index.search(compile_query("content:zebrafish"), Visibility(("s2",)), 10)) == []
    assert ids(index.search(compile_query("zebrafish"), Visibility(("s2",)), 10)) == ["n3"]
    # a share of the folder d1: its subtree only
    assert ids(index.search(compile_query("content:zebrafish"), Visibility((), (("s1", "d1"),)), 10)) == ["n2"]
    assert ids(index.search(compile_query("content:zebrafish"), Visibility(()), 10)) == []


def test_highlights_mark_the_words_found(index):
    hits, total = index.search(compile_query("content:quick"), Visibility(("s1",)), 10)
    assert total == 1 and "<mark>quick</mark>" in hits[0].highlights


def test_a_subtree_is_rewritten_trashed_and_removed(index):
    docs = list(index.subtree("s1", "d1"))
    assert sorted(d.node_id for d in docs) == ["d1", "n2"]
    index.upsert([IndexDoc(**{**{f: getattr(d, f) for f in d.__dataclass_fields__}, "live": False}) for d in docs])
    index.commit()
    assert ids(index.search(compile_query("content:roadmap"), Visibility(("s1",)), 10)) == []
    assert index.get("s1", "n2").content == "roadmap for the zebrafish tank"  # kept for a restore
    index.remove_subtree("s1", "d1")
    index.commit()
    assert index.get("s1", "n2") is None and index.get("s1", "n1") is not None


# ---------------------------------------------------------------------- text extraction

WORD = "quarkblossom"


@pytest.mark.parametrize("media, make", [
    ("application/pdf", documents.pdf),
    ("application/vnd.oasis.opendocument.text", documents.odt),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", documents.docx),
    ("text/plain", lambda text: text.encode()),
])
def test_text_is_read_from_each_document_kind(media, make):
    assert WORD in extract_text(media, make(f"hello {WORD} there"))


def test_mixed_content_and_separate_runs_keep_words_apart():
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("content.xml", '<d xmlns:t="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
                                  '<t:p>alpha <t:span>beta</t:span>gamma</t:p><t:p>delta</t:p></d>')
    text = extract_text("application/vnd.oasis.opendocument.text", data.getvalue())
    assert text.split() == ["alpha", "betagamma", "delta"]


@pytest.mark.parametrize("media, data", [
    ("application/pdf", b"%PDF-1.4 not really"),
    ("application/vnd.oasis.opendocument.text", b"PK\x03\x04 broken zip"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"not a zip"),
])
def test_broken_documents_give_no_text_and_no_error(media, data):
    assert extract_text(media, data) == ""


def test_entities_in_document_xml_are_not_expanded():
    laughs = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
              '<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&b;&x; plain</d>')
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("content.xml", laughs)
    text = extract_text("application/vnd.oasis.opendocument.text", data.getvalue())
    assert "root:" not in text and "aaaaaaaaaa" not in text
