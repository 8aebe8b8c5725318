"""Templates per notice (Jinja2): `templates/<name>.txt` holds the subject on its first line, a blank
line, then the plain-text body; `templates/<name>.html` the HTML version, or the shared layout
renders the text's paragraphs when a notice has no HTML of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

__all__ = ["Rendered", "render"]

TEMPLATES = Path(__file__).parent / "templates"
SIGNATURE = "-- \n"

_text = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False, undefined=StrictUndefined)
_html = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), undefined=StrictUndefined
)


def money(cents: int, currency: str) -> str:
    whole, rest = divmod(int(cents), 100)
    return f"{whole:,}.{rest:02d} {currency}"


for _env in (_text, _html):
    _env.globals["money"] = money


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: str, context: dict[str, Any]) -> Rendered:
    """The notice `template` for `context` (`event`, `recipient`, `member`)."""
    source = _text.get_template(f"{template}.txt").render(context)
    subject, _, text = source.partition("\n\n")
    subject = " ".join(subject.split())
    body = text.split(SIGNATURE, 1)[0]
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    variables = {**context, "subject": subject, "paragraphs": paragraphs}
    try:
        html = _html.get_template(f"{template}.html").render(variables)
    except TemplateNotFound:
        html = _html.get_template("_layout.html").render(variables)
    return Rendered(subject, text.strip() + "\n", html)
