"""Reading a body into the caller's buffers: from the socket where it can, else ``iter_raw``."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from depot.client.body import BodyReader

Script = Callable[[socket.socket], None]


class ScriptedServer:
    """A loopback HTTP server that answers each connection's requests with ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # OSError: the client went away
            self.script(conn)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def read_request(conn: socket.socket) -> bool:
    """Read one request's head; False if the client closed the connection first."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return False
        data += piece
    return True


def head(length: int | None, extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"HTTP/1.1 200 OK\r\n{framing}{extra}\r\n".encode()


def read_all(body: BodyReader, window: int) -> bytes:
    buffer = bytearray(window)
    out = bytearray()
    with memoryview(buffer) as view:
        while got := body.readinto(view):
            out += view[:got]
    return bytes(out)


PAYLOAD = os.urandom(3 * 1024 * 1024 + 17)


def test_a_body_with_a_length_is_read_from_the_socket_after_what_h11_holds(serve) -> None:
    def script(conn: socket.socket) -> None:
        while read_request(conn):
            # The head and the first bytes in one send: h11 receives them together.
            conn.sendall(head(len(PAYLOAD)) + PAYLOAD[:1000])
            time.sleep(0.05)
            conn.sendall(PAYLOAD[1000:])

    server = serve(script)
    with httpx.Client() as http, http.stream("GET", server.url) as response:
        body = BodyReader(response)
        assert body.direct
        assert read_all(body, 4096 + 3) == PAYLOAD
        assert not body.more()


def test_a_connection_read_directly_is_not_reused_one_read_by_h11_is(serve) -> None:
    def script(conn: socket.socket) -> None:
        while read_request(conn):
            conn.sendall(head(len(PAYLOAD)) + PAYLOAD)

    server = serve(script)
    with httpx.Client() as http:
        for _ in range(2):
            with http.stream("GET", server.url) as response:
                assert read_all(BodyReader(response), 65536) == PAYLOAD
        assert server.connections == 2  # h11 never saw the body: the connection is closed
        for _ in range(2):
            assert http.get(server.url).content == PAYLOAD
        assert server.connections == 3  # read by h11 to its end: kept alive


def test_a_chunked_body_goes_through_iter_raw(serve) -> None:
    def script(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head(None, "Transfer-Encoding: chunked\r\n"))
        for start in range(0, len(PAYLOAD), 100_000):
            piece = PAYLOAD[start : start + 100_000]
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    server = serve(script)
    with httpx.Client() as http, http.stream("GET", server.url) as response:
        body = BodyReader(response)
        assert not body.direct
        assert read_all(body, 70_000) == PAYLOAD  # without the chunks' framing


def test_a_body_cut_short_ends_early(serve) -> None:
    def script(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head(len(PAYLOAD)) + PAYLOAD[: len(PAYLOAD) // 2])

    server = serve(script)
    with httpx.Client() as http, http.stream("GET", server.url) as response:
        body = BodyReader(response)
        assert body.direct
        assert read_all(body, 65536) == PAYLOAD[: len(PAYLOAD) // 2]
        assert body.more()  # the rest of the announced length never came


def test_a_reset_connection_raises_a_read_error(serve) -> None:
    def script(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head(len(PAYLOAD)) + PAYLOAD[:200_000])
        time.sleep(0.1)
        # Close with a reset (SO_LINGER 0) rather than an orderly end of stream.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = serve(script)
    with httpx.Client() as http, http.stream("GET", server.url) as response:
        body = BodyReader(response)
        with pytest.raises(httpx.ReadError):
            read_all(body, 65536)


def test_a_stalled_body_raises_a_read_timeout(serve) -> None:
    release = threading.Event()

    def script(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head(len(PAYLOAD)) + PAYLOAD[:1000])
        release.wait(5)

    server = serve(script)
    with httpx.Client(timeout=0.3) as http, http.stream("GET", server.url) as response:
        body = BodyReader(response)
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            read_all(body, 65536)
        assert time.monotonic() - started < 3
    release.set()


def test_bytes_beyond_what_was_read_are_reported_by_more(serve) -> None:
    def script(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(head(10) + b"0123456789")

    server = serve(script)
    with httpx.Client() as http, http.stream("GET", server.url) as response:
        body = BodyReader(response)
        with memoryview(bytearray(6)) as window:
            assert body.readinto(window) == 6
            assert window.tobytes() == b"012345"
        assert body.more()


def test_a_transport_without_a_socket_goes_through_iter_raw() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, stream=httpx.ByteStream(PAYLOAD))
    )
    with httpx.Client(transport=transport) as http, http.stream("GET", "http://x/") as r:
        body = BodyReader(r)
        assert not body.direct
        with memoryview(bytearray(len(PAYLOAD) - 5)) as window:
            assert body.readinto(window) == len(window)
        assert body.more()
        assert read_all(body, 2) == PAYLOAD[-5:]
        assert not body.more()
