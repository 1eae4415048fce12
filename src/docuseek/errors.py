"""Domain errors; the API turns each into a status code and a JSON body."""

from __future__ import annotations

from typing import Any


class DocuseekError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthorized(DocuseekError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DocuseekError):
    status_code = 403
    code = "forbidden"


class NotFound(DocuseekError):
    status_code = 404
    code = "not_found"


class Conflict(DocuseekError):
    status_code = 409
    code = "conflict"


class InvalidInput(DocuseekError):
    status_code = 422
    code = "invalid_input"


class MalformedBody(DocuseekError):
    status_code = 400
    code = "malformed_body"


class PayloadTooLarge(DocuseekError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedEncoding(DocuseekError):
    status_code = 415
    code = "unsupported_media_type"


class SearchUnavailable(DocuseekError):
    status_code = 503
    code = "search_unavailable"
