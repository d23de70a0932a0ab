"""Errors the client raises; each carries the server's message and the HTTP status."""

from __future__ import annotations

import httpx

__all__ = [
    "AuthError",
    "ClientError",
    "ConflictError",
    "IntegrityError",
    "InvalidError",
    "NotFoundError",
    "TransportError",
    "error_from_response",
]


class ClientError(Exception):
    """A request to Depot failed. ``status`` is the HTTP status, or None without one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFoundError(ClientError):
    """The org, space, artifact, version or file does not exist or is not visible."""


class AuthError(ClientError):
    """No valid token (401), or the token's user may not do this (403)."""


class ConflictError(ClientError):
    """The request clashes with existing state (409)."""


class InvalidError(ClientError):
    """The server refused a value in the request (400, 413, 416 or 422)."""


class TransportError(ClientError):
    """The server could not be reached, or the connection broke, after retries."""


class IntegrityError(ClientError):
    """Downloaded bytes do not match the SHA-256 or size the server announced."""


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        if parts:
            return "; ".join(parts)
    return response.text.strip()[:500]


def error_from_response(response: httpx.Response) -> ClientError:
    """The error for a failed response, with the server's message."""
    status = response.status_code
    message = _message(response)
    kind: type[ClientError]
    if status == 404:
        kind = NotFoundError
    elif status in (401, 403):
        kind = AuthError
    elif status == 409:
        kind = ConflictError
    elif status in (400, 413, 416, 422):
        kind = InvalidError
    else:
        kind = ClientError
    return kind(message, status=status)
