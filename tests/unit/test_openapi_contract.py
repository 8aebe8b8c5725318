"""Every service's OpenAPI document, read without starting anything: what a client may send is bounded
(an integer without a maximum reached the database as 2^63 and answered 500), and every refusal the
service can give is documented with the shared error body (the fuzzing gate checks answers against it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scte.kit import testing
from scte.kit.bounds import INT_MAX
from scte.platform import SERVICES, service_module

ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "422", "429")


def _openapi(name: str, tmp_path: Path) -> dict[str, Any]:
    module = service_module(name)
    assert module is not None, name
    runtime = module.build_runtime(testing.test_settings(tmp_path))
    schema: dict[str, Any] = runtime.app.openapi()
    return schema


def _resolve(schema: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        node = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return node


def _integers(schema: dict[str, Any], node: Any, where: str, seen: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every integer schema reachable from `node`, with where it is."""
    if isinstance(node, dict) and "$ref" in node:
        if node["$ref"] in seen:
            return []
        seen = seen | {node["$ref"]}
        return _integers(schema, _resolve(schema, node), f"{where}<{node['$ref'].rsplit('/', 1)[1]}>", seen)
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "integer":
            found.append((where, node))
        for key, value in node.items():
            if key in ("properties",):
                for prop, sub in value.items():
                    found += _integers(schema, sub, f"{where}.{prop}", seen)
            elif key in ("items", "additionalProperties", "not"):
                found += _integers(schema, value, f"{where}[]", seen)
            elif key in ("anyOf", "oneOf", "allOf"):
                for sub in value:
                    found += _integers(schema, sub, where, seen)
    return found


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "put", "post", "patch", "delete")
    ]


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_integer_a_client_sends_is_bounded(name: str, tmp_path: Path) -> None:
    schema = _openapi(name, tmp_path)
    unbounded = []
    for label, op in _operations(schema):
        inputs = [(f"{p['in']} {p['name']}", p.get("schema", {})) for p in op.get("parameters", [])]
        for media in op.get("requestBody", {}).get("content", {}).values():
            inputs.append(("body", media.get("schema", {})))
        for where, node in inputs:
            for spot, integer in _integers(schema, node, where, set()):
                low = integer.get("minimum", integer.get("exclusiveMinimum"))
                high = integer.get("maximum", integer.get("exclusiveMaximum"))
                if low is None or high is None or high > INT_MAX or low < -INT_MAX - 1:
                    unbounded.append(f"{label}: {spot}")
    assert not unbounded, f"integers without bounds within a 32-bit column: {unbounded}"


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_operation_documents_the_shared_refusals(name: str, tmp_path: Path) -> None:
    schema = _openapi(name, tmp_path)
    missing = []
    for label, op in _operations(schema):
        if label == "GET /health":
            continue
        for status in ERROR_STATUSES:
            response = op.get("responses", {}).get(status)
            content = (response or {}).get("content", {}).get("application/json", {})
            body = _resolve(schema, content.get("schema", {}))
            if not body or set(body.get("required", ())) != {"error", "message"}:
                missing.append(f"{label} {status}")
    assert not missing, f"operations without the shared error body: {missing[:20]}"


def test_csv_files_are_documented_as_csv(tmp_path: Path) -> None:
    """`GET /reports/runs/{id}.csv` was documented as JSON: a client (and the fuzzer) then read a CSV
    file as a schema violation."""
    schema = _openapi("reports", tmp_path)
    csv_routes = [(label, op) for label, op in _operations(schema) if label.endswith(".csv")]
    assert len(csv_routes) == 2, [label for label, _ in csv_routes]
    for label, op in csv_routes:
        assert list(op["responses"]["200"]["content"]) == ["text/csv"], label
