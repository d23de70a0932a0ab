"""The stock huggingface_hub, its `hf` CLI and transformers download from Depot.

Models are published with Depot's own client (``push``); the Hub clients then read them
under ``HF_ENDPOINT=<server>/hf/acme`` with repo ids ``{space}/{artifact}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    HfApi,
    hf_hub_download,
    snapshot_download,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import _CACHED_NO_EXIST, http_get
from huggingface_hub.utils import paginate

from depot.catalog import service as catalog
from depot.db.engine import Database
from depot.huggingface.repos import empty_commit_id
from depot.search.embedder import model_directory
from depot.services import Services
from tests.api.huggingface.conftest import Push, hf_env
from tests.conftest import World

WEIGHTS = os.urandom(3 * 1024 * 1024 + 11)
FILES = {
    "config.json": b'{"model_type": "tiny", "layers": 2}',
    "model.safetensors": WEIGHTS,
    "tokenizer/vocab.txt": b"[PAD]\n[UNK]\nhello\nworld\n",
    "empty.txt": b"",
}
HF_BIN = Path(sys.executable).with_name("hf")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def api(hf_endpoint: str, world: World) -> HfApi:
    """The stock client as bob (a viewer on org acme)."""
    return HfApi(endpoint=hf_endpoint, token=world.tokens["bob"])


# -- files --------------------------------------------------------------------------------


def test_hf_hub_download_returns_the_pushed_bytes(
    push: Push,
    hf_endpoint: str,
    world: World,
    tmp_path: Path,
    requests_seen: list[tuple[str, str]],
) -> None:
    version = push("ml/tiny", FILES)
    cache = tmp_path / "hf"
    snapshot = cache / "models--ml--tiny" / "snapshots" / version.commit_id
    for path, data in FILES.items():
        local = hf_hub_download(
            "ml/tiny", path, endpoint=hf_endpoint, token=world.tokens["bob"], cache_dir=cache
        )
        assert Path(local) == snapshot / path
        assert Path(local).read_bytes() == data
        # The blob in the cache is named after its sha256: the ETag Depot sends.
        assert Path(local).resolve().name == sha256(data)
    assert tree(snapshot) == FILES
    assert (cache / "models--ml--tiny" / "refs" / "main").read_text() == version.commit_id
    gets = [path for method, path in requests_seen if method == "GET" and "/resolve/" in path]
    assert len(gets) == len([data for data in FILES.values() if data])  # not the empty one

    # A second call asks for the metadata again (main may have moved) but not the bytes.
    requests_seen.clear()
    again = hf_hub_download(
        "ml/tiny",
        "model.safetensors",
        endpoint=hf_endpoint,
        token=world.tokens["bob"],
        cache_dir=cache,
    )
    assert Path(again).read_bytes() == WEIGHTS
    assert requests_seen == [("HEAD", "/hf/acme/ml/tiny/resolve/main/model.safetensors")]

    # With the commit id, a cached file needs no request at all.
    requests_seen.clear()
    hf_hub_download(
        "ml/tiny",
        "config.json",
        revision=version.commit_id,
        endpoint=hf_endpoint,
        token=world.tokens["bob"],
        cache_dir=cache,
    )
    assert requests_seen == []


def test_resolve_headers_and_byte_ranges(
    push: Push, hf_endpoint: str, world: World, tmp_path: Path
) -> None:
    version = push("ml/tiny", FILES)
    url = f"{hf_endpoint}/ml/tiny/resolve/main/model.safetensors"
    auth = world.auth("bob")
    head = httpx.head(url, headers=auth | {"accept-encoding": "gzip"})
    assert head.status_code == 200
    assert head.headers["x-repo-commit"] == version.commit_id
    assert head.headers["etag"] == head.headers["x-linked-etag"] == f'"{sha256(WEIGHTS)}"'
    assert head.headers["content-length"] == str(len(WEIGHTS))
    assert head.headers["accept-ranges"] == "bytes"
    assert "content-encoding" not in head.headers
    assert "x-xet-hash" not in head.headers and "link" not in head.headers

    ranged = httpx.get(url, headers=auth | {"range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == WEIGHTS[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(WEIGHTS)}"
    assert ranged.headers["x-repo-commit"] == version.commit_id

    # The client's own resuming download: it asks for the rest with Range and appends it.
    partial = tmp_path / "partial"
    with partial.open("wb") as out:
        out.write(WEIGHTS[:1000])
        http_get(url, out, resume_size=1000, headers=auth, expected_size=len(WEIGHTS))
    assert partial.read_bytes() == WEIGHTS


def test_a_missing_file_is_an_entry_not_found_at_a_commit(
    push: Push, hf_endpoint: str, world: World, tmp_path: Path
) -> None:
    version = push("ml/tiny", FILES)
    missing = httpx.head(f"{hf_endpoint}/ml/tiny/resolve/main/nope.json", headers=world.auth("bob"))
    assert missing.status_code == 404
    assert missing.headers["x-error-code"] == "EntryNotFound"
    assert missing.headers["x-repo-commit"] == version.commit_id
    cache = tmp_path / "hf"
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(
            "ml/tiny", "nope.json", endpoint=hf_endpoint, token=world.tokens["bob"], cache_dir=cache
        )
    # The client remembers the absence for that commit (transformers relies on it).
    assert try_to_load_from_cache("ml/tiny", "nope.json", cache_dir=cache) is _CACHED_NO_EXIST


def test_errors_map_to_the_hub_exceptions(
    push: Push, hf_endpoint: str, world: World, tmp_path: Path
) -> None:
    push("ml/tiny", FILES)

    def download(repo: str, token: str | bool, **options: str) -> str:
        return hf_hub_download(
            repo,
            "config.json",
            endpoint=hf_endpoint,
            token=token,
            cache_dir=tmp_path / os.urandom(4).hex(),
            **options,
        )

    with pytest.raises(RepositoryNotFoundError):
        download("ml/missing", world.tokens["bob"])
    with pytest.raises(RepositoryNotFoundError):
        download("nospace/tiny", world.tokens["bob"])
    with pytest.raises(RepositoryNotFoundError):  # dave may not see acme/ml
        download("ml/tiny", world.tokens["dave"])
    with pytest.raises(RepositoryNotFoundError):  # no token at all
        download("ml/tiny", False)
    with pytest.raises(RevisionNotFoundError):
        download("ml/tiny", world.tokens["bob"], revision="7")
    with pytest.raises(RevisionNotFoundError):
        download("ml/tiny", world.tokens["bob"], revision="no-such-alias")
    with pytest.raises(RevisionNotFoundError):
        download("ml/tiny", world.tokens["bob"], revision="0" * 40)

    api = HfApi(endpoint=hf_endpoint, token=world.tokens["dave"])
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("ml/tiny")
    assert not api.repo_exists("ml/tiny")
    bob = HfApi(endpoint=hf_endpoint, token=world.tokens["bob"])
    assert bob.repo_exists("ml/tiny") and not bob.repo_exists("ml/missing")
    assert bob.revision_exists("ml/tiny", "1") and not bob.revision_exists("ml/tiny", "2")
    assert bob.file_exists("ml/tiny", "config.json") and not bob.file_exists("ml/tiny", "x")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hf_endpoint, token=False).model_info("ml/tiny")


# -- revisions and snapshots --------------------------------------------------------------


def test_snapshot_download_at_main_a_number_an_alias_and_a_commit(
    push: Push, hf_endpoint: str, world: World, tmp_path: Path, api: HfApi
) -> None:
    first = push("ml/tiny", FILES, alias="prod")
    second_files = {"config.json": b'{"layers": 3}', "weights/part-1.bin": os.urandom(5000)}
    second = push("ml/tiny", second_files)
    assert first.commit_id != second.commit_id
    cases = [
        (None, second, second_files),
        ("main", second, second_files),
        ("2", second, second_files),
        ("1", first, FILES),
        ("prod", first, FILES),
        (first.commit_id, first, FILES),
    ]
    for revision, version, files in cases:
        folder = snapshot_download(
            "ml/tiny",
            revision=revision,
            endpoint=hf_endpoint,
            token=world.tokens["bob"],
            cache_dir=tmp_path / f"cache-{revision}",
        )
        assert Path(folder).name == version.commit_id, revision
        assert tree(Path(folder)) == files, revision
        # X-Repo-Commit and model_info agree on what the revision is.
        assert api.model_info("ml/tiny", revision=revision).sha == version.commit_id
        head = httpx.head(
            f"{hf_endpoint}/ml/tiny/resolve/{revision or 'main'}/config.json",
            headers=world.auth("bob"),
        )
        assert head.headers["x-repo-commit"] == version.commit_id

    # One cache, two refs: each ref file names its commit.
    cache = tmp_path / "shared"
    for revision in ("main", "prod"):
        snapshot_download(
            "ml/tiny",
            revision=revision,
            endpoint=hf_endpoint,
            token=world.tokens["bob"],
            cache_dir=cache,
        )
    refs = cache / "models--ml--tiny" / "refs"
    assert (refs / "main").read_text() == second.commit_id
    assert (refs / "prod").read_text() == first.commit_id


def test_model_info(push: Push, api: HfApi, world: World) -> None:
    version = push("ml/tiny", FILES)
    info = api.model_info("ml/tiny")
    assert info.id == "ml/tiny" and info.author == "ml"
    assert info.sha == version.commit_id
    assert info.private is True
    assert info.last_modified is not None and info.created_at is not None
    assert sorted(s.rfilename for s in info.siblings or []) == sorted(FILES)
    assert all(s.size is None for s in info.siblings or [])

    detailed = api.model_info("ml/tiny", revision="1", files_metadata=True)
    by_name = {s.rfilename: s for s in detailed.siblings or []}
    weights = by_name["model.safetensors"]
    assert weights.size == len(WEIGHTS)
    assert weights.lfs is not None and weights.lfs.sha256 == sha256(WEIGHTS)
    assert weights.lfs.size == len(WEIGHTS) and weights.lfs.pointer_size > 100


def test_an_empty_repo_has_a_commit_and_no_files(
    database: Database, world: World, api: HfApi, hf_endpoint: str, tmp_path: Path
) -> None:
    with database.write() as db:
        artifact = catalog.create_artifact(db, catalog.get_space(db, "acme", "ml"), "new", "model")
        empty = empty_commit_id(artifact)
    info = api.model_info("ml/new")
    assert info.sha == empty and info.siblings == []
    assert api.repo_exists("ml/new")
    assert api.list_repo_files("ml/new") == []
    folder = snapshot_download(
        "ml/new", endpoint=hf_endpoint, token=world.tokens["bob"], cache_dir=tmp_path / "hf"
    )
    assert Path(folder).name == empty and tree(Path(folder)) == {}
    refs = api.list_repo_refs("ml/new")
    assert refs.branches[0].target_commit == empty and refs.tags == []


def test_list_repo_files_and_tree(push: Push, api: HfApi) -> None:
    version = push("ml/tiny", FILES)
    assert sorted(api.list_repo_files("ml/tiny")) == sorted(FILES)

    top = {entry.path: entry for entry in api.list_repo_tree("ml/tiny")}
    assert sorted(top) == ["config.json", "empty.txt", "model.safetensors", "tokenizer"]
    weights = top["model.safetensors"]
    assert weights.size == len(WEIGHTS)  # type: ignore[union-attr]
    assert weights.lfs.sha256 == sha256(WEIGHTS)  # type: ignore[union-attr]
    assert len(top["tokenizer"].tree_id) == 40  # type: ignore[union-attr]

    inside = list(api.list_repo_tree("ml/tiny", path_in_repo="tokenizer", expand=True))
    assert [entry.path for entry in inside] == ["tokenizer/vocab.txt"]
    assert inside[0].last_commit is not None  # type: ignore[union-attr]
    assert inside[0].last_commit.oid == version.commit_id  # type: ignore[union-attr]

    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree("ml/tiny", path_in_repo="nope"))
    with pytest.raises(RemoteEntryNotFoundError):  # a file is not a folder
        list(api.list_repo_tree("ml/tiny", path_in_repo="config.json"))


def test_tree_pages_follow_link_headers_pinned_to_the_commit(
    push: Push, hf_endpoint: str, world: World
) -> None:
    files = {f"shards/{index:02}.bin": bytes([index]) * (index + 1) for index in range(7)}
    version = push("ml/sharded", files)
    url = f"{hf_endpoint}/api/models/ml/sharded/tree/main/shards"
    first = httpx.get(url, params={"limit": 3}, headers=world.auth("bob"))
    assert len(first.json()) == 3
    following = first.links["next"]["url"]
    assert following.startswith(f"{hf_endpoint}/api/models/ml/sharded/tree/{version.commit_id}/")

    # The stock client's pager follows the links to the end.
    paths = [
        entry["path"] for entry in paginate(url, params={"limit": 3}, headers=world.auth("bob"))
    ]
    assert paths == sorted(files)


def test_refs_name_main_and_the_aliases(push: Push, api: HfApi) -> None:
    first = push("ml/tiny", FILES, alias="prod")
    second = push("ml/tiny", {"config.json": b"{}"}, alias="staging")
    refs = api.list_repo_refs("ml/tiny", include_pull_requests=True)
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", second.commit_id)]
    assert sorted((t.name, t.target_commit) for t in refs.tags) == [
        ("prod", first.commit_id),
        ("staging", second.commit_id),
    ]
    assert refs.pull_requests == []


# -- listing ------------------------------------------------------------------------------


def test_list_models_shows_what_the_caller_may_see(
    push: Push, hf_endpoint: str, world: World, database: Database
) -> None:
    push("ml/tiny", FILES)
    push("ml/tiny-v2", {"a.txt": b"a"})
    push("ml/bert", {"a.txt": b"b"})
    with database.write() as db:
        catalog.create_artifact(db, catalog.get_space(db, "acme", "web"), "tiny-web", "model")

    def ids(token: str, **options: object) -> list[str]:
        api = HfApi(endpoint=hf_endpoint, token=token)
        return [model.id for model in api.list_models(**options)]  # type: ignore[arg-type]

    bob = world.tokens["bob"]
    assert ids(bob) == ["ml/bert", "ml/tiny", "ml/tiny-v2", "web/tiny-web"]
    assert ids(bob, search="tiny") == ["ml/tiny", "ml/tiny-v2", "web/tiny-web"]
    assert ids(bob, search="TINY", author="ml") == ["ml/tiny", "ml/tiny-v2"]
    assert ids(bob, search="ml/b") == ["ml/bert"]
    assert ids(bob, author="web") == ["web/tiny-web"]
    assert ids(bob, search="%") == []
    assert ids(bob, limit=2) == ["ml/bert", "ml/tiny"]
    assert ids(world.tokens["alice"]) == ["ml/bert", "ml/tiny", "ml/tiny-v2"]  # not web
    assert ids(world.tokens["dave"]) == []

    url = f"{hf_endpoint}/api/models"
    paged = [m["id"] for m in paginate(url, params={"limit": 1}, headers=world.auth("bob"))]
    assert paged == ["ml/bert", "ml/tiny", "ml/tiny-v2", "web/tiny-web"]
    model = next(iter(HfApi(endpoint=hf_endpoint, token=bob).list_models(search="bert")))
    assert model.private is True and model.created_at is not None


# -- stores with pre-signed URLs ----------------------------------------------------------


# Only the scale-out configuration has a store that signs URLs (S3): the local store
# serves its files itself.
@pytest.mark.postgres
@pytest.mark.parametrize("configuration", ["scale-out"], indirect=True)
def test_a_store_with_presigned_urls_gets_a_redirect(
    push: Push,
    hf_endpoint: str,
    world: World,
    tmp_path: Path,
    services: Services,
    requests_seen: list[tuple[str, str]],
) -> None:
    version = push("ml/tiny", FILES)
    services.store.redirect_downloads = True  # type: ignore[attr-defined]
    head = httpx.head(
        f"{hf_endpoint}/ml/tiny/resolve/main/model.safetensors", headers=world.auth("bob")
    )
    assert head.status_code == 307
    assert not head.headers["location"].startswith(hf_endpoint)
    assert head.headers["x-repo-commit"] == version.commit_id
    assert head.headers["x-linked-etag"] == f'"{sha256(WEIGHTS)}"'
    assert head.headers["x-linked-size"] == str(len(WEIGHTS))

    requests_seen.clear()
    local = hf_hub_download(
        "ml/tiny",
        "model.safetensors",
        endpoint=hf_endpoint,
        token=world.tokens["bob"],
        cache_dir=tmp_path / "hf",
    )
    assert Path(local).read_bytes() == WEIGHTS
    # Only the HEAD reached Depot: the bytes came from the store.
    assert requests_seen == [("HEAD", "/hf/acme/ml/tiny/resolve/main/model.safetensors")]


# -- the CLI and transformers, as separate processes ----------------------------------------


def test_hf_download_cli(push: Push, hf_endpoint: str, world: World, tmp_path: Path) -> None:
    version = push("ml/tiny", FILES, alias="prod")
    env = hf_env(hf_endpoint, world.tokens["bob"], tmp_path / "hf-home")
    one = subprocess.run(
        [str(HF_BIN), "download", "ml/tiny", "config.json", "--revision", "prod", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert one.returncode == 0, one.stderr
    path = Path(one.stdout.strip().splitlines()[-1])
    assert path.read_bytes() == FILES["config.json"]
    assert path.parent.name == version.commit_id

    everything = subprocess.run(
        [str(HF_BIN), "download", "ml/tiny", "--local-dir", str(tmp_path / "out"), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert everything.returncode == 0, everything.stderr
    assert {k: v for k, v in tree(tmp_path / "out").items() if ".cache" not in k} == FILES

    missing = subprocess.run(
        [str(HF_BIN), "download", "ml/missing", "config.json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode != 0
    assert "not found" in (missing.stdout + missing.stderr).lower()


TRANSFORMERS_SCRIPT = """
import json
from transformers import AutoConfig, AutoTokenizer

config = AutoConfig.from_pretrained("ml/minilm")
tokenizer = AutoTokenizer.from_pretrained("ml/minilm")
print(json.dumps({
    "model_type": config.model_type,
    "hidden_size": config.hidden_size,
    "ids": tokenizer("Depot serves models")["input_ids"],
}))
"""
MINILM_FILES = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
]


def test_transformers_loads_a_config_and_a_tokenizer(
    push: Push, hf_endpoint: str, world: World, tmp_path: Path
) -> None:
    from tokenizers import Tokenizer

    folder = model_directory()
    push("ml/minilm", {name: (folder / name).read_bytes() for name in MINILM_FILES})
    result = subprocess.run(
        [sys.executable, "-c", TRANSFORMERS_SCRIPT],
        env=hf_env(hf_endpoint, world.tokens["bob"], tmp_path / "hf-home"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    expected_config = json.loads((folder / "config.json").read_text())
    assert loaded["model_type"] == expected_config["model_type"] == "bert"
    assert loaded["hidden_size"] == expected_config["hidden_size"]
    local = Tokenizer.from_file(str(folder / "tokenizer.json"))
    local.no_padding()  # the file pads to 128 tokens; transformers pads only when asked
    assert loaded["ids"] == local.encode("Depot serves models").ids


def test_the_example_in_the_docs_runs(
    push: Push, hf_endpoint: str, world: World, tmp_path: Path
) -> None:
    document = (Path(__file__).resolve().parents[3] / "docs" / "huggingface.md").read_text()
    example = document.split("## Example", 1)[1].split("```python", 1)[1].split("```")[0]
    push("ml/churn", {"config.json": b'{"layers": 2}', "weights.bin": b"w" * 1000}, alias="prod")
    result = subprocess.run(
        [sys.executable, "-c", example],
        env=hf_env(hf_endpoint, world.tokens["bob"], tmp_path / "hf-home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "['config.json', 'weights.bin']" in result.stdout
    assert "['ml/churn']" in result.stdout and "['prod']" in result.stdout
