"""SearchIndex on tantivy, in a directory of the data path.

One process at a time writes (tantivy's own writer lock; core.indexer arranges who). Any number of
processes read: they reopen the newest commit before each query. All fields are stored, so a moved
or restored subtree is rewritten from the index itself.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator

import tantivy
from tantivy import Occur, Query

from infiniscale.core import kql
from infiniscale.core.ports.search import Hit, IndexDoc, Visibility
from infiniscale.core.search_query import Below, Everything, Exact, NamePattern, Prefix, Range, Words
from infiniscale.memory import give_back

log = logging.getLogger("infiniscale.search")

WORDS = "words"  # our analyzer: split on non-alphanumerics, lower case, accents folded
FIELD_OF = {"tags": "tags_lc", "media_type": "mtype", "media_group": "mgroup", "kind": "kind", "node": "node",
            "mtime_ns": "mtime", "size": "size"}
FUZZY_MIN = 5  # words this long match with one typo too
WRITER_HEAP = 32_000_000  # tantivy's minimum is 15 MB per thread; one thread keeps memory low
PAGE = 1000


def _analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(64))
            .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.ascii_fold()).build())


def _schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    for raw in ("key", "space", "node", "parent", "anc", "kind", "mtype", "mgroup", "tags", "tags_lc", "name_lc",
                "live", "ckey"):
        b.add_text_field(raw, stored=raw not in ("tags_lc", "name_lc"), tokenizer_name="raw")
    b.add_text_field("name", stored=True, tokenizer_name=WORDS)
    b.add_text_field("content", stored=True, tokenizer_name=WORDS)
    b.add_integer_field("mtime", stored=True, indexed=True, fast=True)
    b.add_integer_field("size", stored=True, indexed=True, fast=True)
    return b.build()


def _glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


class TantivyIndex:
    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.schema = _schema()
        self.index = tantivy.Index(self.schema, path=path, reuse=True)
        self.analyzer = _analyzer()
        self.index.register_tokenizer(WORDS, _analyzer())
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writing (one process)

    @property
    def writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        return self._writer

    def claim_writer(self) -> bool:
        """Whether this process keeps the index now: it holds tantivy's writer lock, or just took it."""
        try:
            self.writer  # noqa: B018 - opening the writer takes the lock
        except ValueError:  # another process has it
            return False
        return True

    def close_writer(self) -> None:
        """Gives the writer lock and its memory back (after a commit)."""
        if self._writer is not None:
            self._writer.wait_merging_threads()
            self._writer = None

    def upsert(self, docs: list[IndexDoc]) -> None:
        w = self.writer
        for d in docs:
            key = f"{d.space_id}:{d.node_id}"
            w.delete_documents_by_term("key", key)
            doc = tantivy.Document()
            doc.add_text("key", key)
            doc.add_text("space", d.space_id)
            doc.add_text("node", d.node_id)
            doc.add_text("parent", d.parent_id)
            for a in d.ancestors:
                doc.add_text("anc", a)
            doc.add_text("name", d.name)
            doc.add_text("name_lc", d.name.lower())
            doc.add_text("kind", d.kind)
            doc.add_text("mtype", d.media_type.lower())
            for g in d.media_groups:
                doc.add_text("mgroup", g)
            for t in d.tags:
                doc.add_text("tags", t)
                doc.add_text("tags_lc", t.lower())
            if d.content:
                doc.add_text("content", d.content)
            doc.add_integer("mtime", d.mtime_ns)
            doc.add_integer("size", d.size)
            doc.add_text("live", "1" if d.live else "0")
            doc.add_text("ckey", d.content_key)
            w.add_document(doc)

    def remove_subtree(self, space_id: str, node_id: str) -> None:
        self.writer.delete_documents_by_term("anc", node_id)

    def remove_space(self, space_id: str) -> None:
        self.writer.delete_documents_by_term("space", space_id)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.commit()
            # a commit's buffers and merges leave freed heap behind that glibc would keep: a writer
            # process stayed about 25 MiB larger after a thousand small commits
            give_back()

    # ------------------------------------------------------------------ reading (any process)

    def _searcher(self) -> tantivy.Searcher:
        with self._lock:
            self.index.reload()
            return self.index.searcher()

    def count(self) -> int:
        return self._searcher().num_docs

    def get(self, space_id: str, node_id: str) -> IndexDoc | None:
        searcher = self._searcher()
        hits = searcher.search(Query.term_query(self.schema, "key", f"{space_id}:{node_id}"), limit=1, count=False).hits
        return self._to_index_doc(searcher.doc(hits[0][1])) if hits else None

    def subtree(self, space_id: str, node_id: str) -> Iterator[IndexDoc]:
        searcher = self._searcher()
        query = Query.term_query(self.schema, "anc", node_id)
        offset = 0
        while True:
            hits = searcher.search(query, limit=PAGE, offset=offset, count=False).hits
            for _score, address in hits:
                doc = self._to_index_doc(searcher.doc(address))
                if doc.space_id == space_id:
                    yield doc
            if len(hits) < PAGE:
                return
            offset += PAGE

    @staticmethod
    def _to_index_doc(doc: tantivy.Document) -> IndexDoc:
        d = doc.to_dict()

        def one(field: str, default: str | int = "") -> str | int:
            values = d.get(field) or [default]
            return values[0]

        return IndexDoc(space_id=str(one("space")), node_id=str(one("node")), parent_id=str(one("parent")),
                        ancestors=tuple(d.get("anc", ())), name=str(one("name")), kind=str(one("kind")),
                        media_type=str(one("mtype")), media_groups=tuple(d.get("mgroup", ())),
                        mtime_ns=int(one("mtime", 0)), size=int(one("size", 0)), tags=tuple(d.get("tags", ())),
                        content=str(one("content")), content_key=str(one("ckey")), live=one("live") == "1")

    def search(self, query: object, visible: Visibility, limit: int, offset: int = 0) -> tuple[list[Hit], int]:
        scope = [(Occur.Should, Query.term_query(self.schema, "space", s)) for s in visible.spaces]
        scope += [(Occur.Should, Query.term_query(self.schema, "anc", node)) for _space, node in visible.subtrees]
        if not scope:
            return [], 0
        searcher = self._searcher()
        # exact words first; only when they find nothing, words one typo away too
        for fuzzy in (False, True):
            full = Query.boolean_query([
                (Occur.Must, self._translate(query, fuzzy)),
                (Occur.Must, Query.const_score_query(Query.boolean_query(scope), 0.0)),
                (Occur.Must, Query.const_score_query(Query.term_query(self.schema, "live", "1"), 0.0)),
            ])
            result = searcher.search(full, limit=max(1, limit), offset=offset, count=True)
            if result.count:
                break
        snippets = self._snippets(searcher, query)
        hits = []
        for score, address in result.hits:
            doc = searcher.doc(address)
            highlights = ""
            if snippets is not None:
                # <mark> is what the web client keeps of the markup
                html = snippets.snippet_from_doc(doc).to_html()
                highlights = html.replace("<b>", "<mark>").replace("</b>", "</mark>")
            hits.append(Hit(space_id=doc.get_first("space") or "", node_id=doc.get_first("node") or "",
                            score=float(score), highlights=highlights))
        return hits, result.count

    def _snippets(self, searcher: tantivy.Searcher, query: object) -> tantivy.SnippetGenerator | None:
        content = [q for q in _content_words(query)]
        if not content:
            return None
        words = [tok for w in content for tok in self.analyzer.analyze(w.text)]
        if not words:
            return None
        q = Query.boolean_query([(Occur.Should, Query.term_query(self.schema, "content", t)) for t in words])
        generator = tantivy.SnippetGenerator.create(searcher, q, self.schema, "content")
        generator.set_max_num_chars(200)
        return generator

    # ------------------------------------------------------------------ query translation

    def _translate(self, node: object, fuzzy: bool) -> Query:
        s = self.schema
        if isinstance(node, kql.And):
            return Query.boolean_query([(Occur.Must, self._translate(p, fuzzy)) for p in node.parts])
        if isinstance(node, kql.Or):
            return Query.boolean_query([(Occur.Should, self._translate(p, fuzzy)) for p in node.parts])
        if isinstance(node, kql.Not):  # never fuzzy: a near miss must not exclude
            return Query.boolean_query([(Occur.Must, Query.const_score_query(Query.all_query(), 0.0)),
                                        (Occur.MustNot, self._translate(node.part, False))])
        if isinstance(node, Words):
            return self._words(node, fuzzy)
        if isinstance(node, NamePattern):
            return self._name_pattern(node.pattern.lower(), fuzzy)
        if isinstance(node, Exact):
            field = FIELD_OF[node.field]
            value = node.value if field in ("kind", "node") else node.value.lower()
            return Query.term_query(s, field, value)
        if isinstance(node, Prefix):
            return Query.regex_query(s, FIELD_OF[node.field], re.escape(node.value.lower()) + ".*")
        if isinstance(node, Range):
            hi = None if node.hi is None else node.hi - 1
            if node.lo is not None and hi is not None and hi < node.lo:
                return Query.empty_query()
            return Query.range_query(s, FIELD_OF[node.field], tantivy.FieldType.Integer, node.lo, hi)
        if isinstance(node, Below):
            return Query.term_query(s, "anc", node.node_id)
        if isinstance(node, Everything):
            return Query.all_query()
        raise TypeError(f"not a search query node: {node!r}")

    def _word(self, field: str, token: str, prefix: bool, fuzzy: bool) -> Query:
        """One word: exact first, then (for names) as the start of a word, then (`fuzzy`) one typo
        away: for words of letters only, since "report2" must not find "report3"."""
        s = self.schema
        options = [(Occur.Should, Query.boost_query(Query.term_query(s, field, token), 3.0))]
        if prefix:
            options.append((Occur.Should, Query.boost_query(
                Query.fuzzy_term_query(s, field, token, distance=0, prefix=True), 1.5)))
        if fuzzy and len(token) >= FUZZY_MIN and token.isalpha():
            options.append((Occur.Should, Query.fuzzy_term_query(s, field, token, distance=1,
                                                                 transposition_cost_one=True)))
        return Query.boolean_query(options)

    def _words(self, node: Words, fuzzy: bool) -> Query:
        tokens = self.analyzer.analyze(node.text)
        if not tokens:
            return Query.empty_query()
        if node.phrase and len(tokens) > 1:
            return Query.phrase_query(self.schema, node.field, tokens)
        prefix = node.field == "name"
        return Query.boolean_query([(Occur.Must, self._word(node.field, t, prefix, fuzzy)) for t in tokens])

    def _pattern_query(self, pattern: str) -> Query:
        """`*word*` (the web client's search) looks through the words of names, a much smaller
        dictionary than whole names: a run of letters and digits can only lie inside one word.
        Anything else matches against whole names."""
        middle = pattern.strip("*")
        if pattern.startswith("*") and pattern.endswith("*") and middle and middle.isalnum():
            tokens = self.analyzer.analyze(middle)
            if len(tokens) == 1:
                return Query.regex_query(self.schema, "name", ".*" + re.escape(tokens[0]) + ".*")
        return Query.regex_query(self.schema, "name_lc", _glob_regex(pattern))

    def _name_pattern(self, pattern: str, fuzzy: bool) -> Query:
        s = self.schema
        exact = Query.boost_query(self._pattern_query(pattern), 3.0)
        literal = max(re.split(r"[*?]", pattern), key=len)
        tokens = self.analyzer.analyze(literal)
        if not fuzzy or len(tokens) != 1 or len(tokens[0]) < FUZZY_MIN or not tokens[0].isalpha():
            return exact
        near = Query.fuzzy_term_query(s, "name", tokens[0], distance=1, transposition_cost_one=True)
        return Query.boolean_query([(Occur.Should, exact), (Occur.Should, near)])


def _content_words(node: object) -> Iterator[Words]:
    if isinstance(node, Words) and node.field == "content":
        yield node
    elif isinstance(node, kql.And | kql.Or):
        for p in node.parts:
            yield from _content_words(p)
