"""The OpenAPI document describes every route, with the errors it really returns."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from docuseek.api.openapi import OPERATIONS, ErrorResponse
from docuseek.console import STATIC_DIR
from tests.helpers import Service

PLACEHOLDERS = {
    "name": "nosuch",
    "doc_id": "nodoc",
    "key_id": "987654",
    "task_id": "987654",
    "field": "nofield",
}
# /readyz's 503 is its own {"status", "checks"} body, documented as such.
OWN_ERROR_BODY = {("GET", "/readyz", "503")}


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m.group(1)], path)


def test_every_route_has_an_entry_and_every_entry_a_route(service: Service) -> None:
    schema = service.client.get("/openapi.json").json()
    routes = {(method, path) for method, path, _ in operations(schema)}
    assert len(routes) >= 17
    assert routes == set(OPERATIONS), (
        f"routes without documentation: {sorted(routes - set(OPERATIONS))};"
        f" documentation without a route: {sorted(set(OPERATIONS) - routes)}"
    )


def test_every_operation_is_documented_with_its_errors(service: Service) -> None:
    response = service.client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert "HTTPValidationError" not in response.text
    assert "ValidationError" not in schema["components"]["schemas"]
    found = operations(schema)
    assert len(found) == len(OPERATIONS)
    for method, path, op in found:
        where = f"{method} {path}"
        doc = OPERATIONS[(method, path)]
        assert op["summary"] == doc.summary and len(op["summary"]) > 3, where
        assert op["description"] == doc.description and len(op["description"]) > 20, where
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), where
        for code, body in responses.items():
            if code.startswith("2") and "application/json" in body.get("content", {}):
                assert "example" in body["content"]["application/json"], where
            if code[0] in "45" and (method, path, code) not in OWN_ERROR_BODY:
                media = body["content"]["application/json"]
                assert media["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, where
                ErrorResponse.model_validate(media["example"])
        # Every route takes query parameters through the storable check: 422 everywhere.
        assert "422" in responses, where
        if op.get("security"):
            assert "401" in responses, where
        if "{" in path:
            assert "404" in responses, where
        if "requestBody" in op:
            assert {"400", "413", "422"} <= set(responses), where
            media_types = op["requestBody"]["content"]
            body_media = media_types.get("application/json") or media_types["multipart/form-data"]
            assert "example" in body_media, where
    upload = schema["paths"]["/collections/{name}/documents"]["post"]["requestBody"]["content"]
    ndjson = upload["application/x-ndjson"]["example"].splitlines()
    assert [json.loads(line) for line in ndjson] == upload["application/json"]["example"]
    error = schema["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(schema["components"]["schemas"]["ErrorBody"]["properties"]) == {
        "code",
        "message",
        "details",
    }


def _documented(service: Service, status: str) -> list[tuple[str, str]]:
    schema = service.client.get("/openapi.json").json()
    return [(m, p) for m, p, op in operations(schema) if status in op["responses"]]


# Bodies that pass the route's own body model, so the call reaches the missing resource.
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/collections/{name}/documents/delete"): {"filter": ["section:a"]},
}


def _call(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    json_body = VALID_BODIES.get((method, path), {})
    body = {"json": json_body} if method in ("PUT", "POST", "PATCH") else {}
    return client.request(method, concrete(path), **body, **kwargs)


def test_documented_401s_are_real_error_bodies(service: Service) -> None:
    anonymous = TestClient(service.client.app)
    documented = _documented(service, "401")
    assert len(documented) == len(OPERATIONS) - 3  # all but /healthz, /readyz, /metrics
    for method, path in documented:
        response = _call(anonymous, method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert ErrorResponse.model_validate(response.json()).error.code == "unauthorized"


def test_documented_404s_are_real_error_bodies(service: Service) -> None:
    for method, path in _documented(service, "404"):
        response = _call(service.client, method, path)
        if method == "PUT":  # PUT creates: its 404s come from a race with a delete
            continue
        assert response.status_code == 404, (method, path, response.text)
        assert ErrorResponse.model_validate(response.json()).error.code == "not_found"


@pytest.mark.parametrize("method,path", sorted(OPERATIONS))
def test_documented_422_is_a_real_error_body(service: Service, method: str, path: str) -> None:
    response = _call(service.client, method, path, params={"x": "a\x00b"})
    assert response.status_code == 422, response.text
    error = ErrorResponse.model_validate(response.json()).error
    assert error.code == "invalid_input" and "'x'" in error.message


class _ScriptCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        self.problems += [f"<{tag} {n}=...>" for n in names if n.startswith("on")]
        if tag == "script":
            self.in_script = True
            if "src" not in names:
                self.problems.append("inline <script>")
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"(https?:)?//", value):
                self.problems.append(f"off-site asset {value}")

    def handle_endtag(self, tag: str) -> None:
        self.in_script = self.in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append("inline script text")


@pytest.mark.parametrize("page", ["/", "/docs"])
def test_pages_have_no_inline_script_and_no_off_site_assets(service: Service, page: str) -> None:
    """What a `script-src 'self'` policy needs; the browser tests check the rest."""
    response = service.client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    check = _ScriptCheck()
    check.feed(response.text)
    assert check.problems == []
    for asset in re.findall(r'(?:src|href)="(/[^"]+)"', response.text):
        if asset != "/docs":
            assert service.client.get(asset).status_code == 200, asset


def test_console_files_are_package_data() -> None:
    assert {"index.html", "console.js", "console.css", "docs.html", "docs.js"} <= {
        p.name for p in STATIC_DIR.iterdir()
    }
