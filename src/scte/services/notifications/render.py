"""Templates per notice (Jinja2): `templates/<name>.txt` holds the subject on its first line, a blank
line, then the plain-text body; `templates/<name>.html` the HTML version, or the shared layout
renders the text's paragraphs when a notice has no HTML of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

__all__ = ["SECRET_FIELDS", "Rendered", "render", "render_for_reading"]

TEMPLATES = Path(__file__).parent / "templates"
SIGNATURE = "-- \n"
SECRET_FIELDS: dict[str, tuple[str, ...]] = {"password_reset": ("reset_url",)}
"""Per template, the event fields that carry a secret (a single-use link): sent in the mail only,
never shown when a notice is read back from the delivery log (by its member or by staff)."""
WITHHELD = "(the one-time link is in the mail itself; it is not shown here)"

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


def render_for_reading(template: str, context: dict[str, Any]) -> Rendered:
    """The notice as `render` makes it, with its secret fields replaced by a note (`SECRET_FIELDS`)."""
    secrets = SECRET_FIELDS.get(template, ())
    if secrets:
        event = {**context.get("event", {}), **dict.fromkeys(secrets, WITHHELD)}
        context = {**context, "event": event}
    return render(template, context)
