"""Reading a response body straight into the caller's buffers."""

from __future__ import annotations

import socket
import ssl

import httpx

__all__ = ["BodyReader"]


class BodyReader:
    """Reads the raw body of a streamed ``httpx.Response`` into buffers the caller owns.

    Why: httpx hands a body over as ``bytes`` that h11 has copied through its receive
    buffer and httpcore copies again, 64 KiB at a time. Over loopback on the 2-core VM of
    docs/performance.md, reading 1 GiB through ``iter_raw`` cost the receiving thread
    0.87–0.96 s of CPU; reading it from the socket into one buffer, 0.21–0.24 s.

    So where an HTTP/1.1 body has a ``Content-Length`` and comes on a socket that can be
    read as it is (plain TCP, or TLS that the socket itself decrypts), the reader first
    hands out what h11 already holds, then reads the rest from the socket into the
    caller's buffer (``direct``). h11 never sees those bytes, so httpcore closes the
    connection when the response is closed instead of reusing it: one connection per body.
    Any other body (another transport, chunked, HTTP/2, TLS inside a proxy's TLS) goes
    through ``iter_raw``.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._pieces = response.iter_raw()
        self._held = memoryview(b"")
        self._socket = _readable_socket(response)
        # Bytes of the body still on the socket, once h11's are taken (direct reads only).
        self._left = int(response.headers["content-length"]) if self._socket else 0
        self._started = False

    @property
    def direct(self) -> bool:
        """Whether the body is read from the socket rather than through ``iter_raw``."""
        return self._socket is not None

    def readinto(self, window: memoryview) -> int:
        """Fill the start of ``window`` with the next bytes of the body; 0 at its end.

        Raises:
            httpx.TransportError: The connection failed or timed out.
        """
        if not self._held and (not self._started or self._socket is None):
            self._started = True
            self._held = memoryview(next(self._pieces, b""))
            self._left -= len(self._held)
        if self._held:
            take = min(len(window), len(self._held))
            window[:take] = self._held[:take]
            self._held = self._held[take:]
            return take
        if self._socket is None or self._left <= 0:
            return 0
        try:
            got = self._socket.recv_into(window, min(len(window), self._left))
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        self._left -= got
        return got

    def more(self) -> bool:
        """Whether the body holds bytes beyond those read (read for ``iter_raw``).

        Raises:
            httpx.TransportError: The connection failed while reading them.
        """
        if self._held or self._left > 0:
            return True
        if self._socket is not None:
            return False
        return any(self._pieces)


def _readable_socket(response: httpx.Response) -> socket.socket | None:
    """The socket a whole ``Content-Length`` body of ``response`` can be read from, if any."""
    if response.http_version != "HTTP/1.1" or "transfer-encoding" in response.headers:
        return None
    length = response.headers.get("content-length", "")
    if not length.isdigit():
        return None
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    sock = stream.get_extra_info("socket")
    if isinstance(sock, ssl.SSLSocket):
        return sock
    if isinstance(sock, socket.socket) and stream.get_extra_info("ssl_object") is None:
        return sock  # plain TCP; a TLS stream over a bare socket is decrypted elsewhere
    return None
