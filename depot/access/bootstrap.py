"""First start: the `admin` superuser and its token file."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from depot.access.models import User
from depot.access.service import create_token, create_user
from depot.db.engine import Database
from depot.errors import Conflict

__all__ = ["ADMIN_TOKEN_FILE", "ADMIN_USERNAME", "ensure_admin"]

ADMIN_USERNAME = "admin"
ADMIN_TOKEN_FILE = "admin.token"


def ensure_admin(database: Database, data_dir: Path) -> str | None:
    """Create the ``admin`` superuser on a database without users.

    Its token is written to ``data_dir/admin.token`` (mode 0600) and returned,
    once; on a database that already has users nothing happens and ``None`` is returned.
    """
    with database.write() as db:
        if db.scalar(select(User.id).limit(1)) is not None:
            return None
        try:
            user = create_user(db, ADMIN_USERNAME, display_name="Administrator", is_superuser=True)
        except Conflict:
            return None  # another replica, starting at the same moment, made it

        _row, token = create_token(db, user, name="bootstrap")
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / ADMIN_TOKEN_FILE
        # Written before the transaction commits: if this fails there is no admin
        # without a way in. O_EXCL refuses to follow or reuse anything already there.
        if path.exists():
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
    return token
