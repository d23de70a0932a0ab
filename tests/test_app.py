"""The built app, as a server's worker builds it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A worker builds the app and serves: it never migrates, and it needs numpy only once it
# searches or lists a large space. Alembic and numpy together are about 25 MiB of its idle
# memory (the target is 150 MiB for the whole server).
BUILD_AND_REPORT = """
import sys
from depot.app import create_app
from depot.settings import load_settings
create_app(load_settings(data_dir=sys.argv[1]), background_jobs=False)
print(sorted({"alembic", "numpy", "onnxruntime"} & set(sys.modules)))
"""


def test_building_the_app_imports_neither_alembic_nor_numpy(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", BUILD_AND_REPORT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
