"""The commands that talk to a server: login, whoami, push, pull, ls, show, search, rm,
alias and token, run in-process against a live server."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from depot.cli.main import app
from depot.cli.reference import END, START, render_reference
from tests.conftest import World
from tests.live import CHUNK

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(server_url: str, world: World, tmp_path: Path) -> dict[str, str]:
    return {
        "DEPOT_URL": server_url,
        "DEPOT_TOKEN": world.tokens["alice"],
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "COLUMNS": "200",
    }


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def as_json(result: Result) -> object:
    return json.loads(result.stdout)


def test_login_saves_the_token_privately(
    server_url: str, world: World, tmp_path: Path, env: dict[str, str]
) -> None:
    bare = {"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"], "DEPOT_URL": "", "DEPOT_TOKEN": ""}
    run(bare, "whoami", code=1)  # no server known yet
    refused = run(bare, "login", server_url, "--token", "tfy_bad_bad", code=4)
    assert "invalid token" in refused.stderr
    run(bare, "login", server_url, "--token", world.tokens["alice"])
    config = Path(env["XDG_CONFIG_HOME"]) / "depot" / "config.json"
    assert config.stat().st_mode & 0o777 == 0o600
    assert json.loads(config.read_text())["url"] == server_url
    assert as_json(run(bare, "whoami", "--json"))["username"] == "alice"  # type: ignore[index]
    assert "alice" in run(bare, "whoami").stdout


def test_push_pull_show_ls_and_search(env: dict[str, str], tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "tokenizer").mkdir(parents=True)
    files = {"weights.bin": os.urandom(CHUNK + 5), "tokenizer/vocab.txt": b"a\nb\n"}
    for path, data in files.items():
        (model / path).write_bytes(data)
    pushed = as_json(
        run(
            env,
            "push",
            "ml/churn",
            str(model),
            "--kind",
            "model",
            "--alias",
            "prod",
            "--meta",
            "accuracy=0.93",
            "--meta",
            "owner=risk",
            "--description",
            "Churn model",
            "--json",
        )
    )
    assert pushed["version"]["number"] == 1  # type: ignore[index]
    assert pushed["version"]["metadata"] == {"accuracy": 0.93, "owner": "risk"}  # type: ignore[index]
    people = run(env, "push", "ml/churn", str(model), "--quiet")
    assert "pushed acme/ml/churn:2" in people.stdout and "2 already there" in people.stdout

    out = tmp_path / "out"
    pulled = run(env, "pull", "ml/churn@prod", str(out), "--quiet")
    assert "2 downloaded" in pulled.stdout
    assert {p: (out / p).read_bytes() for p in files} == files
    assert "2 already there" in run(env, "pull", "ml/churn:1", str(out), "--quiet").stdout

    shown = as_json(run(env, "show", "ml/churn@prod", "--json"))
    assert sorted(f["path"] for f in shown["files"]) == sorted(files)  # type: ignore[index]
    table = run(env, "show", "ml/churn").stdout
    assert "acme/ml/churn:2" in table and "weights.bin" in table

    assert "acme/ml" in run(env, "ls").stdout
    listed = as_json(run(env, "ls", "ml", "--kind", "model", "--json"))
    assert [item["name"] for item in listed] == ["churn"]  # type: ignore[union-attr]
    versions = as_json(run(env, "ls", "ml/churn", "--json"))
    assert [v["number"] for v in versions] == [2, 1]  # type: ignore[union-attr]
    found = as_json(run(env, "search", "churn", "--json"))
    assert [item["name"] for item in found] == ["churn"]  # type: ignore[union-attr]
    assert "nothing matches" in run(env, "search", "nothing-like-it").stdout


def test_aliases_and_deleting(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"1")
    run(env, "push", "ml/m", str(tmp_path / "f"), "--quiet")
    (tmp_path / "f").write_bytes(b"2")
    run(env, "push", "ml/m", str(tmp_path / "f"), "--quiet")
    assert "stable → acme/ml/m:1" in run(env, "alias", "set", "ml/m:1", "stable").stdout
    assert as_json(run(env, "show", "ml/m@stable", "--json"))["number"] == 1  # type: ignore[index]
    run(env, "alias", "rm", "ml/m", "stable")
    run(env, "show", "ml/m@stable", code=3)
    run(env, "rm", "ml/m:1", "--yes")
    assert [v["number"] for v in as_json(run(env, "ls", "ml/m", "--json"))] == [2]  # type: ignore[union-attr]
    kept = CliRunner().invoke(app, ["rm", "ml/m"], env=env, input="n\n")
    assert kept.exit_code == 1
    run(env, "rm", "ml/m", "--yes")
    missing = run(env, "rm", "ml/m", "--yes", code=3)
    assert "error: artifact acme/ml/m not found" in missing.stderr


def test_tokens(env: dict[str, str]) -> None:
    made = as_json(run(env, "token", "create", "--name", "ci", "--json"))
    token_id = made["info"]["id"]  # type: ignore[index]
    assert token_id in run(env, "token", "list").stdout
    as_new = {**env, "DEPOT_TOKEN": made["token"]}  # type: ignore[index]
    assert "alice" in run(as_new, "whoami").stdout
    run(env, "token", "revoke", token_id)
    assert "revoked" in run(as_new, "whoami", code=4).stderr


def test_exit_codes(env: dict[str, str], world: World, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"1")
    assert run(env, "show", "not-a-ref", code=2).stderr.startswith("error: ")
    run(env, "push", "ml/x", str(tmp_path / "f"), "--meta", "novalue", code=2)
    run(env, "push", code=2)
    run(env, "show", "ml/nothing", code=3)
    viewer = run(
        {**env, "DEPOT_TOKEN": world.tokens["bob"]}, "push", "ml/x", str(tmp_path / "f"), code=4
    )
    assert "editor role required" in viewer.stderr
    assert "depot login" in run({**env, "DEPOT_TOKEN": "tfy_a_b"}, "whoami", code=4).stderr
    refused = run(env, "push", "ml/x", str(tmp_path / "f"), "--alias", "latest", code=1)
    assert "reserved" in refused.stderr
    unreachable = run({**env, "DEPOT_URL": "http://127.0.0.1:9"}, "whoami", code=1)
    assert "cannot reach" in unreachable.stderr


def test_the_cli_reference_matches_the_commands() -> None:
    document = (REPO / "docs" / "cli.md").read_text()
    assert START in document and END in document, "docs/cli.md lost its reference markers"
    written = document.split(START, 1)[1].split(END, 1)[0].strip()
    assert written == render_reference().strip(), (
        "docs/cli.md is out of date: run `.venv/bin/python -m depot.cli.reference`"
    )


def test_the_first_session_in_the_docs_runs(
    server_url: str,
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = (REPO / "docs" / "cli.md").read_text()
    block = document.split("## A first session", 1)[1].split("```console", 1)[1].split("```")[0]
    lines = [line.removeprefix("$ ") for line in block.strip().splitlines()]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(os.urandom(1000))
    (tmp_path / "model" / "config.json").write_text("{}")
    env = {
        "DEPOT_DATABASE_URL": database_url,
        "DEPOT_DATA_DIR": str(data_dir),
        "DEPOT_URL": "",
        "DEPOT_TOKEN": "",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    token = ""
    for line in lines:
        words = shlex.split(line.replace("http://127.0.0.1:8000", server_url))
        assert words[0] == "depot", line
        words = [token if word == "$TOKEN" else word for word in words[1:]]
        result = run(env, *words)
        if words[:2] == ["admin", "create-user"]:
            token = result.stdout.strip().splitlines()[-1]
    assert (tmp_path / "churn" / "weights.bin").read_bytes() == (
        tmp_path / "model" / "weights.bin"
    ).read_bytes()
