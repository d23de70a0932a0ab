"""`depot serve` as a real process, driven over HTTP the way the contract in DESIGN.md says."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN_DSN
from tests.e2e.server import depot, free_port, serving, whoami

pytestmark = pytest.mark.e2e


def files_containing(root: Path, needle: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(path.name)
    return found


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_serve_bootstraps_and_the_admin_contract_works(tmp_path: Path, server: str) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir, "--server", server) as (url, log):
        printed = log.read_text()
        token = (data_dir / "admin.token").read_text().strip()
        assert token in printed and url in printed
        assert stat.S_IMODE((data_dir / "admin.token").stat().st_mode) == 0o600
        assert whoami(url, token)["username"] == "admin"

        depot("admin", "create-org", "acme", "--data-dir", str(data_dir))
        depot("admin", "create-space", "acme", "ml", "--data-dir", str(data_dir))
        alice = (
            depot("admin", "create-user", "alice", "--org", "acme", "--data-dir", str(data_dir))
            .strip()
            .splitlines()[-1]
        )
        depot("admin", "grant", "alice", "editor", "space:acme/ml", "--data-dir", str(data_dir))
        me = whoami(url, alice)
        assert me["orgs"] == [{"slug": "acme", "name": "acme"}]
        assert {"role": "editor", "scope": "space:acme/ml"} in me["roles"]  # type: ignore[operator]
        assert httpx.get(f"{url}/api/v1/whoami").status_code == 401

    with serving(data_dir, "--server", server) as (url, log):
        assert "admin token: see" in log.read_text()
        assert token not in log.read_text()
        assert (data_dir / "admin.token").read_text().strip() == token
        assert whoami(url, token)["username"] == "admin"
        assert whoami(url, alice)["username"] == "alice"

    # No token is kept in clear under the data directory, except in admin.token.
    assert files_containing(data_dir, token.split("_", 2)[2]) == ["admin.token"]
    assert files_containing(data_dir, alice.split("_", 2)[2]) == []


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; its SQLAlchemy URL."""
    name = f"depot_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_serve_on_postgresql(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with scratch_postgres_database() as url:
        env = {**os.environ, "DEPOT_DATABASE_URL": url}
        assert "upgraded from empty" in depot("db", "upgrade", env=env)
        with serving(data_dir, env=env) as (server, _log):
            token = (data_dir / "admin.token").read_text().strip()
            depot("admin", "create-org", "acme", "--data-dir", str(data_dir), env=env)
            assert whoami(server, token)["orgs"] == [{"slug": "acme", "name": "acme"}]
        assert not (data_dir / "depot.db").exists()


@pytest.mark.postgres
def test_serve_refuses_a_postgresql_database_that_is_not_migrated(tmp_path: Path) -> None:
    with scratch_postgres_database() as url:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "depot",
                "serve",
                "--data-dir",
                str(tmp_path),
                "--database-url",
                url,
                "--port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "run `depot db upgrade`" in result.stderr


def test_serve_with_two_workers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir, "--workers", "2") as (url, _log):
        token = (data_dir / "admin.token").read_text().strip()
        depot("admin", "create-org", "acme", "--data-dir", str(data_dir))
        # Keep-alive connections land on either worker; every one answers the same.
        for _ in range(8):
            with httpx.Client() as client:
                response = client.get(
                    f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.json()["orgs"] == [{"slug": "acme", "name": "acme"}]
        workers = subprocess.run(
            ["pgrep", "-f", "depot.cli.granian_main"], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) >= 3  # the supervisor and two workers (other tests may run more)


def test_uvicorn_refuses_more_than_one_worker(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "depot",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--server",
            "uvicorn",
            "--workers",
            "2",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--workers above 1 needs the granian server" in result.stderr
