"""multipart/form-data read as it streams: fields into memory, the file straight into storage."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from depot.errors import Invalid, PayloadTooLarge

__all__ = ["FilePart", "read_form"]

T = TypeVar("T")
_FIELD_LIMIT = 6 * 1024 * 1024


@dataclass
class FilePart:
    """The file of a form: its name and type, as the client sent them."""

    file_name: str
    content_type: str


@dataclass
class _Part:
    name: str = ""
    file_name: str | None = None
    content_type: str = "application/octet-stream"
    headers: dict[bytes, bytes] = field(default_factory=dict)


def read_form(
    blocks: Iterator[bytes],
    content_type_header: str,
    store_file: Callable[[FilePart, Iterator[bytes]], T],
) -> tuple[dict[str, str], T | None]:
    """Parse a form; the one file part's bytes go to ``store_file`` as they arrive.

    Returns:
        The text fields, and what ``store_file`` returned (``None`` without a file).

    Raises:
        Invalid: not multipart/form-data, malformed, or more than one file.
        PayloadTooLarge: a text field over 6 MiB.
    """
    kind, options = parse_options_header(content_type_header)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Invalid("send the file as multipart/form-data", loc=("body",))
    events: deque[tuple[str, Any]] = deque()
    part = _Part()
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        nonlocal part
        part = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part.headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disposition:
            part.file_name = disposition[b"filename"].decode("utf-8", "replace")
            part.content_type = part.headers.get(
                b"content-type", b"application/octet-stream"
            ).decode("latin-1")
        events.append(("begin", part))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", data[start:end]))

    def on_part_end() -> None:
        events.append(("end", None))

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )

    def next_event() -> tuple[str, Any] | None:
        while not events:
            block = next(blocks, None)
            if block is None:
                parser.finalize()
                if not events:
                    return None
                break
            try:
                parser.write(block)
            except Exception as exc:  # the parser's own errors: a malformed body
                raise Invalid(f"malformed multipart body: {exc}", loc=("body",)) from None
        return events.popleft()

    fields: dict[str, str] = {}
    stored: T | None = None
    current: _Part | None = None
    buffer = bytearray()
    while (event := next_event()) is not None:
        kind_, value = event
        if kind_ == "begin":
            current = value
            buffer.clear()
            if current is not None and current.file_name is not None:
                if stored is not None:
                    raise Invalid("send one file per request", loc=("body", current.name))

                def file_bytes() -> Iterator[bytes]:
                    while (inner := next_event()) is not None:
                        if inner[0] == "data":
                            yield inner[1]
                        elif inner[0] == "end":
                            return
                    raise Invalid("the body ended inside the file", loc=("body",))

                stored = store_file(FilePart(current.file_name, current.content_type), file_bytes())
                current = None
        elif kind_ == "data" and current is not None:
            buffer.extend(value)
            if len(buffer) > _FIELD_LIMIT:
                raise PayloadTooLarge(f"form field {current.name} is over 6 MiB")
        elif kind_ == "end" and current is not None:
            fields[current.name] = buffer.decode("utf-8", "replace")
            current = None
    return fields, stored
