from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import httpx
import pytest

from depot.client import (
    AuthError,
    Client,
    ClientError,
    InvalidError,
    NotFoundError,
    TransferProgress,
)
from depot.client import digests as digest_cache
from depot.client import pull as pull_engine
from depot.client import push as push_engine
from tests.conftest import World
from tests.live import CHUNK


@pytest.fixture
def client(
    server_url: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Client:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("DEPOT_URL", "DEPOT_TOKEN", "DEPOT_ORG"):
        monkeypatch.delenv(name, raising=False)
    return Client(server_url, world.tokens["alice"])


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "weights.bin": os.urandom(CHUNK * 3 + 17),
        "config.json": b'{"layers": 2}',
        "tokenizer/vocab.txt": b"a\nb\n",
        "empty.txt": b"",
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_push_and_pull_a_directory(client: Client, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "model")
    seen: list[TransferProgress] = []
    pushed = client.push(
        "ml/churn",
        [tmp_path / "model"],
        kind="model",
        alias="prod",
        metadata={"accuracy": 0.93},
        description="first",
        progress=seen.append,
    )
    assert pushed.version.ref == "acme/ml/churn:1" and pushed.version.aliases == ["prod"]
    assert sorted(pushed.uploaded) == sorted(files) and pushed.present == []
    assert pushed.bytes_sent == sum(len(data) for data in files.values())
    assert seen[-1].phase == "done" and seen[-1].done_bytes == seen[-1].total_bytes
    assert seen[-1].done_files == 4

    pulled = client.pull("ml/churn@prod", tmp_path / "out")
    assert tree(tmp_path / "out") == files
    assert sorted(pulled.downloaded) == sorted(files)
    again = client.pull("acme/ml/churn:1", tmp_path / "out")
    assert again.downloaded == [] and sorted(again.skipped) == sorted(files)

    shown = client.version("ml/churn")
    assert shown.metadata == {"accuracy": 0.93} and shown.kind == "model"
    assert {f.path: f.sha256 for f in shown.files or []} == {
        path: hashlib.sha256(data).hexdigest() for path, data in files.items()
    }


def test_pushing_the_same_content_again_sends_nothing(client: Client, tmp_path: Path) -> None:
    make_tree(tmp_path / "model")
    client.push("ml/churn", [tmp_path / "model"])
    second = client.push("ml/churn", [tmp_path / "model"])
    assert second.version.number == 2 and second.bytes_sent == 0
    assert sorted(second.present) == sorted(tree(tmp_path / "model"))


def test_a_push_sends_each_file_s_chunks_in_order_one_at_a_time(
    client: Client, tmp_path: Path
) -> None:
    for name in ("a.bin", "b.bin"):
        (tmp_path / "model" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "model" / name).write_bytes(os.urandom(CHUNK * 4 + 5))
    lock = threading.Lock()
    sent: dict[str, list[int]] = {}
    in_flight: dict[str, int] = {}
    overlaps: list[str] = []

    def request(request: httpx.Request) -> None:
        parts = request.url.path.split("/")
        if request.method == "PUT" and "chunks" in parts:
            upload, index = parts[-3], int(parts[-1])
            with lock:
                sent.setdefault(upload, []).append(index)
                in_flight[upload] = in_flight.get(upload, 0) + 1
                if in_flight[upload] > 1:
                    overlaps.append(upload)

    def response(response: httpx.Response) -> None:
        parts = response.request.url.path.split("/")
        if response.request.method == "PUT" and "chunks" in parts:
            with lock:
                in_flight[parts[-3]] -= 1

    client.http.event_hooks = {"request": [request], "response": [response]}
    pushed = client.push("ml/ordered", [tmp_path / "model"], workers=4)
    assert pushed.bytes_sent == 2 * (CHUNK * 4 + 5)
    assert list(sent.values()) == [[0, 1, 2, 3, 4]] * 2 and overlaps == []


@pytest.mark.parametrize("hash_first_below", [CHUNK * 7, 0], ids=["hashed first", "while sent"])
def test_an_interrupted_push_resumes_without_resending(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hash_first_below: int
) -> None:
    monkeypatch.setattr(push_engine, "HASH_FIRST_BELOW", hash_first_below)
    data = os.urandom(CHUNK * 6)
    (tmp_path / "big.bin").write_bytes(data)

    class Stop(Exception):
        """Raised by the progress callback to cut the push off."""

    def stop_half_way(state: TransferProgress) -> None:
        if state.phase == "transfer" and state.done_bytes >= CHUNK * 3:
            raise Stop

    with pytest.raises(Stop):
        client.push("ml/big", [tmp_path / "big.bin"], workers=1, progress=stop_half_way)
    assert client.artifact("ml/big").latest_version is None  # numbered once finished
    resumed = client.push("ml/big", [tmp_path / "big.bin"], workers=2)
    assert resumed.resumed and resumed.version.number == 1
    assert 0 < resumed.bytes_sent <= CHUNK * 4
    client.pull("ml/big", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == data


class Traffic:
    """The push and completion bodies a client sends, seen through httpx's event hooks."""

    def __init__(self, client: Client) -> None:
        self.offers: dict[str, str | None] = {}
        self.completions: list[dict[str, str] | None] = []
        client.http.event_hooks = {"request": [self.request]}

    def request(self, request: httpx.Request) -> None:
        path = request.url.path
        if request.method == "POST" and path.endswith("/pushes"):
            body = json.loads(request.content)
            self.offers = {item["path"]: item["sha256"] for item in body["files"]}
        elif request.method == "POST" and path.endswith("/complete"):
            self.completions.append(json.loads(request.content) if request.content else None)


def read_while_hashing(seen: list[TransferProgress]) -> int:
    """Bytes read in the push's hash phase."""
    return max((s.done_bytes - s.skipped_bytes for s in seen if s.phase == "hash"), default=0)


def test_a_large_file_new_to_the_client_is_hashed_while_it_is_sent(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push_engine, "HASH_FIRST_BELOW", CHUNK)  # weights.bin is large
    files = make_tree(tmp_path / "model")
    small = sum(len(data) for path, data in files.items() if path != "weights.bin")
    digests = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    traffic = Traffic(client)
    seen: list[TransferProgress] = []
    pushed = client.push("ml/w", [tmp_path / "model"], progress=seen.append)
    assert traffic.offers == {**digests, "weights.bin": None}
    assert {"sha256": digests["weights.bin"]} in traffic.completions
    assert read_while_hashing(seen) == small
    assert pushed.bytes_sent == sum(len(data) for data in files.values())
    assert {f.path: f.sha256 for f in pushed.version.files or []} == digests

    # The digest cache knows weights.bin now, but the file had just been written when it
    # was read: it is hashed once more before it is announced, and then not sent.
    seen.clear()
    second = client.push("ml/w", [tmp_path / "model"], progress=seen.append)
    assert traffic.offers == digests and second.bytes_sent == 0
    assert read_while_hashing(seen) == small + len(files["weights.bin"])

    # Once the file has settled, the cache vouches for it: nothing is read or sent.
    monkeypatch.setattr(digest_cache, "SETTLED_NS", 0)
    seen.clear()
    third = client.push("ml/w", [tmp_path / "model"], progress=seen.append)
    assert traffic.offers == digests and third.bytes_sent == 0
    assert read_while_hashing(seen) == 0

    # --hash-first (hash_first=True) hashes even a large file the cache does not know.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "copy.bin").write_bytes(files["weights.bin"])
    copied = client.push("ml/copy", [tmp_path / "other"], hash_first=True)
    assert traffic.offers == {"copy.bin": digests["weights.bin"]} and copied.bytes_sent == 0


def test_a_file_that_changes_while_it_is_sent_is_not_pushed(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push_engine, "HASH_FIRST_BELOW", 0)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(CHUNK * 2))

    def append_half_way(state: TransferProgress) -> None:
        grown = source.stat().st_size > CHUNK * 2
        if state.phase == "transfer" and state.done_bytes >= CHUNK and not grown:
            with source.open("ab") as handle:
                handle.write(b"more")

    with pytest.raises(ClientError, match="changed while it was read"):
        client.push("ml/moving", [source], workers=1, progress=append_half_way)
    assert client.artifact("ml/moving").latest_version is None


def test_pulled_files_are_known_to_the_next_push_and_pull(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = make_tree(tmp_path / "model")
    client.push("ml/src", [tmp_path / "model"])
    client.pull("ml/src", tmp_path / "out")
    monkeypatch.setattr(digest_cache, "SETTLED_NS", 0)  # as if the pull was a while ago
    reads: list[int] = []
    monkeypatch.setattr(pull_engine, "read_sequentially", reads.append)
    again = client.pull("ml/src", tmp_path / "out")
    assert sorted(again.skipped) == sorted(files) and reads == []  # vouched for, not read
    seen: list[TransferProgress] = []
    pushed = client.push("ml/copy", [tmp_path / "out"], progress=seen.append)
    assert pushed.bytes_sent == 0 and sorted(pushed.present) == sorted(files)
    assert read_while_hashing(seen) == 0


def test_a_resumed_push_gives_a_digest_it_learnt_since_at_completion(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(push_engine, "HASH_FIRST_BELOW", 0)
    data = os.urandom(CHUNK * 3)
    source = tmp_path / "big.bin"
    source.write_bytes(data)

    class Stop(Exception):
        """Raised by the progress callback to cut the push off."""

    def stop_after_a_chunk(state: TransferProgress) -> None:
        if state.phase == "transfer" and state.done_bytes >= CHUNK:
            raise Stop

    journal = tmp_path / "journal"
    with pytest.raises(Stop):
        client.push("ml/learnt", [source], progress=stop_after_a_chunk, journal_dir=journal)
    # Meanwhile the digest cache learnt the file's digest (another push of it, say).
    cache = digest_cache.DigestCache(journal)
    cache.record(source, source.stat(), hashlib.sha256(data).hexdigest(), 2**62)
    cache.close()
    traffic = Traffic(client)
    resumed = client.push("ml/learnt", [source], journal_dir=journal)
    assert resumed.resumed and traffic.completions == [{"sha256": hashlib.sha256(data).hexdigest()}]
    client.pull("ml/learnt", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == data


def test_paging_searching_aliases_and_deleting(client: Client, tmp_path: Path) -> None:
    for index in range(3):
        (tmp_path / f"f{index}").write_bytes(bytes([index]))
        client.push(f"ml/m{index}", [tmp_path / f"f{index}"], description=f"model {index}")
    assert [a.name for a in client.artifacts("ml", page_size=1)] == ["m0", "m1", "m2"]
    assert [a.ref for a in client.search("model 1")] == ["acme/ml/m1"]
    (tmp_path / "f0").write_bytes(b"changed")
    client.push("ml/m0", [tmp_path / "f0"])
    assert client.set_alias("ml/m0:1", "stable").number == 1
    assert client.artifact("ml/m0").aliases == {"stable": 1}
    assert [v.number for v in client.versions("ml/m0")] == [2, 1]
    client.remove_alias("ml/m0", "stable")
    client.delete("ml/m0:2")
    assert [v.number for v in client.versions("ml/m0")] == [1]
    client.delete("ml/m0")
    with pytest.raises(NotFoundError, match="artifact acme/ml/m0 not found"):
        client.artifact("ml/m0")


def test_errors_carry_the_servers_message(
    client: Client, server_url: str, world: World, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(AuthError, match="editor role required"):
        Client(server_url, world.tokens["bob"]).push("ml/x", [tmp_path / "f"])
    with pytest.raises(AuthError) as denied:
        Client(server_url, "tfy_nope_nope").whoami()
    assert denied.value.status == 401
    with pytest.raises(InvalidError, match="alias"):
        client.push("ml/x", [tmp_path / "f"], alias="latest")
    with pytest.raises(ClientError, match="does not exist"):
        client.push("ml/x", [tmp_path / "missing"])
    with pytest.raises(ValueError, match="not a valid reference"):
        client.version("just-a-name")


def test_tokens(client: Client, server_url: str) -> None:
    made = client.create_token(name="ci", expires_in_days=7)
    assert Client(server_url, made.token).whoami().username == "alice"
    assert made.info.id in [t.id for t in client.tokens()]
    client.revoke_token(made.info.id)
    with pytest.raises(AuthError, match="revoked"):
        Client(server_url, made.token).whoami()


def test_the_org_must_be_said_when_there_are_several(server_url: str, world: World) -> None:
    root = Client(server_url, world.tokens["root"])
    with pytest.raises(ClientError, match="say which org"):
        root.artifacts("ml").first(1)
    assert root.artifacts("acme/ml").first(1) == []
    assert Client(server_url, world.tokens["root"], org="acme").artifacts("ml").first(1) == []


def test_settings_come_from_the_environment_and_the_config(
    server_url: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from depot.client.config import ClientConfig, config_path, save_config

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("DEPOT_URL", raising=False)
    monkeypatch.delenv("DEPOT_TOKEN", raising=False)
    with pytest.raises(ClientError, match="depot login"):
        Client()
    save_config(ClientConfig(url=server_url, token=world.tokens["alice"]))
    assert config_path().stat().st_mode & 0o777 == 0o600
    assert Client().whoami().username == "alice"
    monkeypatch.setenv("DEPOT_TOKEN", world.tokens["bob"])
    assert Client().whoami().username == "bob"
    assert httpx.get(f"{server_url}/healthz").status_code == 200


def test_the_example_in_the_docs_runs(
    server_url: str, world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = (Path(__file__).resolve().parents[2] / "docs" / "client.md").read_text()
    example = document.split("## Example", 1)[1].split("```python", 1)[1].split("```")[0]
    monkeypatch.setenv("DEPOT_URL", server_url)
    monkeypatch.setenv("DEPOT_TOKEN", world.tokens["alice"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DEPOT_ORG", raising=False)
    exec(compile(example, "docs/client.md", "exec"), {"__name__": "docs_example"})
