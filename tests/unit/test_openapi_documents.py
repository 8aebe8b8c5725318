"""The OpenAPI documents are valid (openapi-spec-validator), declare the bearer scheme on exactly the
operations that need a token, and stay unique when the gateway puts them together."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from scte.kit import testing
from scte.kit.app import ErrorOut, create_app
from scte.kit.auth import CurrentPrincipal
from scte.kit.docs import HTTP_METHODS, combined_document, with_prefix
from scte.platform import SERVICES, service_module

ERROR = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")


def _openapi(name: str, tmp_path: Path) -> dict[str, Any]:
    module = service_module(name)
    assert module is not None, name
    schema: dict[str, Any] = module.build_runtime(testing.test_settings(tmp_path / name)).app.openapi()
    return schema


def _operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    }


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("openapi")
    return {name: _openapi(name, tmp) for name in SERVICES}


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_service_document_is_valid_openapi(name: str, documents: dict[str, dict[str, Any]]) -> None:
    schema = documents[name]
    validate(copy.deepcopy(schema))  # raises on any violation of the OpenAPI 3.1 schema and rules
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schema["components"]["securitySchemes"]["bearer"]["description"],
    }
    operations = _operations(schema)
    ids = Counter(op["operationId"] for op in operations.values())
    assert [i for i, n in ids.items() if n > 1] == []
    secured = {label for label, op in operations.items() if op.get("security") == [{"bearer": []}]}
    assert secured, f"{name}: no operation declares the bearer scheme"
    assert "GET /health" not in secured
    for label, op in operations.items():
        if label == "GET /health":
            continue
        for status in ("401", "403", "404", "409", "413", "429"):
            assert status in op["responses"], f"{name} {label}: {status} undocumented"
        assert "WWW-Authenticate" in op["responses"]["401"]["headers"], label
        assert op["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer", label


def test_security_is_declared_where_a_token_is_required(documents: dict[str, dict[str, Any]]) -> None:
    """From the routes' dependency on require_principal: the members service's public operations (sign
    up, sign in, refresh, reset a password) carry none; reading a member does."""
    members = _operations(documents["members"])
    public = {label for label, op in members.items() if "security" not in op}
    assert public == {
        "GET /health",
        "POST /members",
        "POST /sessions",
        "POST /sessions/refresh",
        "POST /sessions/sign-out",
        "POST /password-resets",
        "POST /password-resets/confirm",
    }
    assert members["GET /members/{member_id}"]["security"] == [{"bearer": []}]
    assert members["GET /members"]["security"] == [{"bearer": []}]  # require_role("staff") through it


def test_a_service_without_a_protected_route_still_declares_the_scheme() -> None:
    router = APIRouter()

    @router.get("/open")
    async def open_route() -> dict[str, str]:
        return {}

    @router.get("/closed")
    async def closed_route(principal: CurrentPrincipal) -> dict[str, str]:
        return {"id": principal.member_id}

    schema = create_app("demo", [router]).openapi()
    validate(copy.deepcopy(schema))
    assert "bearer" in schema["components"]["securitySchemes"]
    assert "security" not in schema["paths"]["/open"]["get"]
    assert schema["paths"]["/closed"]["get"]["security"] == [{"bearer": []}]
    only_open = APIRouter()
    only_open.add_api_route("/open", open_route)
    assert "bearer" in create_app("demo2", [only_open]).openapi()["components"]["securitySchemes"]


def test_the_combined_document_is_valid_and_unique(documents: dict[str, dict[str, Any]]) -> None:
    own = {"openapi": "3.1.0", "info": {"title": "SCTE Platform API", "version": "1"}, "paths": {}}
    combined = combined_document(own, documents, error_schema=ERROR)
    validate(copy.deepcopy(combined))
    operations = _operations(combined)
    assert len(operations) == sum(len(_operations(d)) for d in documents.values())
    ids = Counter(op["operationId"] for op in operations.values())
    assert [i for i, n in ids.items() if n > 1] == []
    for name in SERVICES:
        assert f"GET /api/{name}/health" in operations
        assert operations[f"GET /api/{name}/health"]["operationId"].startswith(f"{name}_")
        assert operations[f"GET /api/{name}/health"]["tags"] == [name]
    assert operations["GET /api/members/members/{member_id}"]["security"] == [{"bearer": []}]
    assert "504" in operations["GET /api/members/members/{member_id}"]["responses"]
    assert set(combined["components"]["securitySchemes"]) == {"bearer"}
    assert {t["name"] for t in combined["tags"]} == set(SERVICES)
    assert "servers" not in combined  # paths carry /api/<service>: relative to the gateway


def test_components_of_two_services_keep_their_own_names() -> None:
    def service(title: str, field: str) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": "1"},
            "paths": {
                "/things/{id}": {
                    "get": {
                        "operationId": "read_thing",
                        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                        "responses": {
                            "200": {
                                "description": "ok",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                            }
                        },
                    }
                }
            },
            "components": {
                "schemas": {
                    "Thing": {"type": "object", "properties": {field: {"$ref": "#/components/schemas/Part"}}},
                    "Part": {"type": "string"},
                }
            },
        }

    own = {"openapi": "3.1.0", "info": {"title": "G", "version": "1"}, "paths": {}}
    combined = combined_document(own, {"a": service("A", "x"), "b": service("B", "y")}, unavailable=["c"])
    validate(copy.deepcopy(combined))
    schemas = combined["components"]["schemas"]
    assert schemas["a.Thing"]["properties"]["x"] == {"$ref": "#/components/schemas/a.Part"}
    assert schemas["b.Thing"]["properties"]["y"] == {"$ref": "#/components/schemas/b.Part"}
    read_b = combined["paths"]["/api/b/things/{id}"]["get"]
    assert read_b["operationId"] == "b_read_thing"
    assert read_b["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/b.Thing"
    }
    assert "not reachable when this document was made): c." in combined["info"]["description"]
    shown = with_prefix(service("A", "x"), "/api/a")
    assert shown["servers"] == [{"url": "/api/a", "description": "Through the gateway"}]
    validate(shown)


def test_the_validator_refuses_what_the_gateway_used_to_show() -> None:
    """The gateway's own FastAPI document listed its catch-all `proxy` once per method under one
    operationId: openapi-spec-validator refuses it, as it does an undeclared path parameter."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.api_route("/api/{service}/{path:path}", methods=["GET", "POST"])
    async def proxy(service: str, path: str) -> None:
        return None

    with pytest.warns(UserWarning, match="Duplicate Operation ID"):
        schema = app.openapi()
    with pytest.raises(OpenAPIValidationError, match="not unique"):
        validate(schema)
    own = {"openapi": "3.1.0", "info": {"title": "G", "version": "1"}, "paths": {}}
    operation = {"responses": {"200": {"description": "x"}}}
    broken = combined_document(own, {"a": {"paths": {"/things/{thing_id}": {"get": operation}}}})
    with pytest.raises(OpenAPIValidationError, match="thing_id"):
        validate(broken)  # a path parameter the operation does not declare
