"""Small XML helpers for the query protocol's responses (written as text: faster than a DOM)."""

from __future__ import annotations

XML_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"

_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        # A literal CR would be normalised to LF by every XML parser; the reference keeps it.
        "\r": "&#xD;",
    }
)


def escape(text: str) -> str:
    return text.translate(_ESCAPES)
