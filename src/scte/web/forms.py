"""Reading posted forms and turning a service's refusal into the message of the field it concerns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.datastructures import FormData

from scte.web.client import ServiceError

__all__ = ["errors_from", "required", "text"]


def text(form: FormData, name: str, max_length: int = 2000) -> str:
    """A text field, stripped; files and absent fields read as empty, overlong ones are cut."""
    value = form.get(name)
    return value.strip()[:max_length] if isinstance(value, str) else ""


def required(values: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, str]:
    """`{field: "Enter <label>"}` for each empty field named in `labels`."""
    return {name: f"Enter {label}" for name, label in labels.items() if not values.get(name)}


def errors_from(exc: ServiceError, fields: Sequence[str], hints: Mapping[str, str] | None = None) -> dict[str, str]:
    """The field errors of a refusal: the fields a 422 names; else the field whose name (or a hint
    word of `hints`) starts or appears in the message; else the form as a whole (`_form`)."""
    named = {name: _sentence(message) for name, message in exc.fields.items() if name in fields}
    if named:
        return named
    message = exc.message
    lowered = message.lower()
    for word, name in {**{f.replace("_", " "): f for f in fields}, **(hints or {})}.items():
        if lowered.startswith(word + ":"):
            return {name: _sentence(message[len(word) + 1 :].strip())}
    for word, name in {**{f.replace("_", " "): f for f in fields}, **(hints or {})}.items():
        if word in lowered:
            return {name: _sentence(message)}
    return {"_form": _sentence(message)}


def _sentence(message: str) -> str:
    message = message.strip() or "This is not valid"
    return message[0].upper() + message[1:]
