"""The download limit: a bare Starlette FileResponse of one file (``BARE_FILE``), nothing else.

Served by granian with the same settings as `depot serve`, so the ratio to it measures what
Depot's own work costs a download.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route


async def download(_request: Request) -> FileResponse:
    return FileResponse(os.environ["BARE_FILE"], media_type="application/octet-stream")


app = Starlette(routes=[Route("/file", download)])
