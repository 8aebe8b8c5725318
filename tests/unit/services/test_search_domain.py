"""Search rules: what is indexed per entity, and how a search box query is read."""

from __future__ import annotations

import sqlite3

import pytest

from scte.services.search.domain import (
    MAX_TERMS,
    DocKind,
    Query,
    course_document,
    media_document,
    member_document,
    parse_query,
    to_fts5,
)


def test_only_members_listed_in_the_directory_are_indexed() -> None:
    assert member_document("m-1", "Jane Doe", listed_in_directory=False) is None
    doc = member_document("m-1", "Jane Doe", True, ("BPI", "BDS-E"), city="Denver", country="US")
    assert doc is not None
    assert (doc.doc_id, doc.kind, doc.title, doc.body) == ("member:m-1", DocKind.MEMBER, "Jane Doe", "Denver, US")
    assert doc.facets == {"program": "BPI BDS-E", "city": "Denver", "country": "US"}


def test_course_and_media_documents() -> None:
    course = course_document("c-1", "Fiber Basics", "Splicing and testing", 3)
    assert (course.doc_id, course.facets) == ("course:c-1", {"units": "3"})
    media = media_document("md-1", "", "expo-2025.jpg", "image/jpeg")
    assert (media.doc_id, media.title) == ("media:md-1", "expo-2025.jpg")
    assert media_document("md-1", "Expo", "x.jpg", "image/jpeg").title == "Expo"


def test_parsing_words_phrases_exclusions_and_filters() -> None:
    query = parse_query('Fiber  "optical TRANSPORT" -copper program:bts kind:Course foo:bar')
    assert query == Query(
        terms=("fiber", "foo", "bar"),
        phrases=("optical transport",),
        excluded=("copper",),
        filters={"program": "BTS", "kind": "course"},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Query()),
        ('""', Query()),
        ("-", Query()),
        ("   ", Query()),
        ('"single"', Query(terms=("single",))),
        ('-"two words"', Query(excluded=("two", "words"))),
        ("fiber fiber FIBER", Query(terms=("fiber",))),
        ("docsis3.1, (hfc)!", Query(terms=("docsis3", "1", "hfc"))),
        ("o'brien", Query(terms=("o'brien",))),
        ("program:", Query(terms=("program",))),
        ('"unclosed phrase', Query(terms=("unclosed", "phrase"))),
    ],
)
def test_parsing_edge_cases(text: str, expected: Query) -> None:
    assert parse_query(text) == expected


def test_long_queries_are_cut_not_refused() -> None:
    query = parse_query(" ".join(f"w{i}" for i in range(100)))
    assert len(query.terms) == MAX_TERMS
    assert query.terms[0] == "w0"


def test_fts5_expression_quotes_user_text() -> None:
    assert to_fts5(parse_query('fiber "optical transport" -copper')) == (
        '"fiber"* AND "optical transport" NOT "copper"'
    )
    assert to_fts5(parse_query("-copper")) is None
    assert to_fts5(Query()) is None


@pytest.mark.parametrize(
    "text", ['fiber"', "NEAR(a b)", "a OR b", "col:x", "*", "^start", 'x" OR "y', "AND", "o'brien -x-y"]
)
def test_fts5_expression_is_always_valid_sqlite_syntax(text: str) -> None:
    """Whatever a user types, the engine gets an expression it can run (no syntax error)."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body)")
    except sqlite3.OperationalError:  # pragma: no cover - SQLite without FTS5
        pytest.skip("SQLite built without FTS5")
    db.execute("INSERT INTO docs VALUES ('a or b near fiber', 'x y start')")
    expression = to_fts5(parse_query(text))
    if expression is not None:
        db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (expression,)).fetchone()
