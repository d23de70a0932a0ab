"""Commands that talk to a server need a live server."""

from tests.live import CHUNK, server_url, services

__all__ = ["CHUNK", "server_url", "services"]
