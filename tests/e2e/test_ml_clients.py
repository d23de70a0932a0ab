"""TrueFoundry's real clients (`truefoundry`, `truefoundry-sdk`) against a real `depot serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from depot.db.engine import open_database
from depot.uploads.models import UploadChunk, UploadSession
from tests.e2e.server import depot, serving

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("ml_clients_script.py")


def test_the_official_clients_run_their_whole_lifecycle(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir) as (url, log):
        depot("admin", "create-org", "acme", "--data-dir", str(data_dir))
        # No email on purpose: Depot gives the clients a stand-in address.
        key = depot(
            "admin", "create-user", "mluser", "--org", "acme", "--data-dir", str(data_dir)
        ).split()[-1]
        depot("admin", "grant", "mluser", "editor", "org:acme", "--data-dir", str(data_dir))
        env = {**os.environ, "TFY_HOST": url, "TFY_API_KEY": key}
        env.pop("TFY_CLI_REWRITE_ML_TO_SVC", None)
        result = subprocess.run(
            [sys.executable, str(SCRIPT), str(tmp_path / "work")],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-6000:] + log.read_text()[
            -3000:
        ]
    steps = [line for line in result.stdout.splitlines() if line.startswith("OK ")]
    for expected in (
        "create_ml_repo",
        "log_artifact folder",
        "log_artifact multipart",
        "log_model",
        "agent skill",
    ):
        assert any(step.startswith(f"OK {expected}") for step in steps), result.stdout

    # The big file really went through the multipart flow: one session, eleven parts.
    database = open_database(f"sqlite:///{data_dir / 'depot.db'}")
    with database.read() as db:
        sessions = [
            row for row in db.scalars(select(UploadSession)) if row.context.get("surface") == "ml"
        ]
        parts = [
            len(list(db.scalars(select(UploadChunk).where(UploadChunk.session_id == s.id))))
            for s in sessions
        ]
    database.dispose()
    assert parts and max(parts) == 11 and all(s.status == "completed" for s in sessions)
