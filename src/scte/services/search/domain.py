"""Search rules: the documents indexed from events, and how a search-box query is read.

Only what its owner made public is indexed: a member appears in the directory only after opting
in, and leaves it when opting out (the document is removed, not hidden). A query is parsed here,
not passed to the full-text engine, so that a user's quote or minus sign can never become engine
syntax (SQLite FTS5 here, PostgreSQL full text in production): terms reach the engine quoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "FILTER_FIELDS",
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "DocKind",
    "Query",
    "SearchDocument",
    "course_document",
    "doc_id",
    "media_document",
    "member_document",
    "parse_query",
    "to_fts5",
]

MAX_QUERY_CHARS = 200
MAX_TERMS = 12


class DocKind(StrEnum):
    MEMBER = "member"
    COURSE = "course"
    MEDIA = "media"


@dataclass(frozen=True)
class SearchDocument:
    doc_id: str
    kind: DocKind
    title: str
    body: str = ""
    facets: dict[str, str] = field(default_factory=dict)
    """Exact-match fields a query can filter on (program, city...)."""


def doc_id(kind: DocKind, entity_id: str) -> str:
    """One document per entity: the id is the upsert key, so re-indexing replaces."""
    return f"{kind}:{entity_id}"


def member_document(
    member_id: str,
    display_name: str,
    listed_in_directory: bool,
    designations: Iterable[str] = (),
    city: str | None = None,
    country: str | None = None,
) -> SearchDocument | None:
    """The directory entry, or None when the member is not listed (the caller removes doc_id)."""
    if not listed_in_directory:
        return None
    held = tuple(designations)
    facets = {"program": " ".join(held)}
    if city:
        facets["city"] = city
    if country:
        facets["country"] = country
    place = ", ".join(p for p in (city, country) if p)
    return SearchDocument(doc_id(DocKind.MEMBER, member_id), DocKind.MEMBER, display_name, place, facets)


def course_document(course_id: str, title: str, description: str, units: int) -> SearchDocument:
    return SearchDocument(doc_id(DocKind.COURSE, course_id), DocKind.COURSE, title, description, {"units": str(units)})


def media_document(media_id: str, title: str, filename: str, content_type: str) -> SearchDocument:
    """Media becomes searchable once processed (media.processed), by title or file name."""
    return SearchDocument(
        doc_id(DocKind.MEDIA, media_id), DocKind.MEDIA, title or filename, filename, {"type": content_type}
    )


# --- queries ---------------------------------------------------------------------------------------

FILTER_FIELDS = frozenset({"kind", "program", "city", "country"})
"""`field:value` words a query may use; any other `x:y` is searched as text."""

_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class Query:
    terms: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    filters: dict[str, str] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.terms or self.phrases)


def _words(text: str) -> list[str]:
    return [w.strip("'-") for w in _WORD.findall(text.lower()) if w.strip("'-")]


def parse_query(text: str) -> Query:
    """Read a search box: words, "exact phrases", -excluded words, and field:value filters.

    Case-insensitive; punctuation separates words; at most MAX_QUERY_CHARS characters and MAX_TERMS
    words are read (the rest is ignored, not an error: a search box should not fail).
    """
    terms: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    filters: dict[str, str] = {}
    for match in _TOKEN.finditer(text[:MAX_QUERY_CHARS]):
        negated, phrase, word = match.groups()
        if phrase is not None:
            words = _words(phrase)
            if not words:
                continue
            if negated:
                excluded.extend(words)
            elif len(words) == 1:
                terms.append(words[0])
            else:
                phrases.append(" ".join(words))
            continue
        name, sep, value = word.partition(":")
        if sep and name.lower() in FILTER_FIELDS and value:
            filters[name.lower()] = value.lower() if name.lower() != "program" else value.upper()
            continue
        if word.startswith("-") and len(word) > 1:
            excluded.extend(_words(word[1:]))
            continue
        terms.extend(_words(word))
    return Query(
        tuple(dict.fromkeys(terms))[:MAX_TERMS],
        tuple(dict.fromkeys(phrases))[:MAX_TERMS],
        tuple(dict.fromkeys(excluded))[:MAX_TERMS],
        filters,
    )


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def to_fts5(query: Query) -> str | None:
    """An FTS5 MATCH expression: every word a prefix match, phrases exact, exclusions with NOT.
    None when nothing positive is asked (FTS5 cannot match "NOT x" alone)."""
    if query.is_empty:
        return None
    parts = [f"{_quote(term)}*" for term in query.terms] + [_quote(phrase) for phrase in query.phrases]
    expression = " AND ".join(parts)
    for word in query.excluded:
        expression += f" NOT {_quote(word)}"
    return expression
