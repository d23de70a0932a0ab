"""The client needs a live server."""

from tests.live import CHUNK, server_url, services

__all__ = ["CHUNK", "server_url", "services"]
