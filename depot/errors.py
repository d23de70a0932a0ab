"""Depot's error tree. Domain code raises these; only ``depot.api.errors`` knows HTTP.

::

    DepotError
    ├── NotFound                 the thing does not exist, or the caller may not see it
    ├── Conflict                 the write clashes with existing state (duplicate name, ...)
    ├── Invalid                  the request is well-formed but its values are wrong
    │   ├── DigestMismatch       bytes do not hash to the expected SHA-256
    │   ├── SizeMismatch         bytes are not the expected length
    │   └── RangeNotSatisfiable  a byte range outside the blob
    ├── PayloadTooLarge          more bytes than a limit allows
    ├── Unauthenticated          no credentials, or credentials that are not valid
    ├── Forbidden                the caller may see the thing but not do this to it
    │   └── QuotaExceeded        a configured limit (products per space, ...) is reached
    └── Unavailable              a backing service (database, store) failed
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DepotError",
    "NotFound",
    "RepoNotFound",
    "RevisionNotFound",
    "EntryNotFound",
    "Conflict",
    "Invalid",
    "DigestMismatch",
    "SizeMismatch",
    "RangeNotSatisfiable",
    "PayloadTooLarge",
    "Unauthenticated",
    "MissingCredentials",
    "Forbidden",
    "QuotaExceeded",
    "Unavailable",
    "Unsupported",
]


class DepotError(Exception):
    """Base of every error Depot raises on purpose.

    Args:
        message: one sentence a person can act on; surfaces show it verbatim.
        loc: where in the request the problem is, as in FastAPI's validation
            errors (for example ``("body", "sha256")``); empty when not tied to a field.
    """

    code = "error"

    def __init__(self, message: str, *, loc: Sequence[str | int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = tuple(loc)


class NotFound(DepotError):
    """The object does not exist, or the caller is not allowed to know it exists."""

    code = "not_found"


class RepoNotFound(NotFound):
    """The repository (artifact) a Hugging Face client named does not exist or is hidden."""

    code = "repo_not_found"


class RevisionNotFound(NotFound):
    """The repository exists but the revision (version, alias, commit id) does not."""

    code = "revision_not_found"


class EntryNotFound(NotFound):
    """The repository and revision exist but hold no file (or folder) at that path."""

    code = "entry_not_found"


class Conflict(DepotError):
    """The write clashes with existing state, such as a name already taken."""

    code = "conflict"


class Invalid(DepotError):
    """A value in the request is not acceptable."""

    code = "invalid"


class DigestMismatch(Invalid):
    """The received bytes do not hash to the SHA-256 the client announced."""

    code = "digest_mismatch"


class SizeMismatch(Invalid):
    """The received bytes are not as long as announced."""

    code = "size_mismatch"


class RangeNotSatisfiable(Invalid):
    """A requested byte range lies outside the blob.

    Args:
        size: the blob's real size, reported back to the client.
    """

    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int, loc: Sequence[str | int] = ()) -> None:
        super().__init__(message, loc=loc)
        self.size = size


class PayloadTooLarge(DepotError):
    """More bytes arrived than a limit allows."""

    code = "payload_too_large"


class Unauthenticated(DepotError):
    """No credentials were given, or they are unknown, revoked or expired."""

    code = "unauthenticated"


class MissingCredentials(Unauthenticated):
    """No credentials were sent at all (as opposed to wrong ones)."""

    code = "missing_credentials"


class Forbidden(DepotError):
    """The caller may see the object but lacks the role for this action."""

    code = "forbidden"


class QuotaExceeded(Forbidden):
    """A configured limit is reached, such as the number of products a space may hold."""

    code = "quota_exceeded"


class Unavailable(DepotError):
    """A backing service failed in a way the caller cannot fix by changing the request."""

    code = "unavailable"


class Unsupported(DepotError):
    """The request asks for a protocol feature Depot does not implement."""

    code = "unsupported"
