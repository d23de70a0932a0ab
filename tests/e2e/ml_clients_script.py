"""Drive Depot's TrueFoundry-compatible ML API with the real public clients, end to end.

This is a standalone script, not a pytest module (tests/e2e/test_ml_clients.py runs it in
its own process against `depot serve`). It needs `truefoundry==0.17.5`, `truefoundry-sdk==0.6.0`,
scikit-learn and joblib, all test dependencies of Depot (`make test` installs them):

    TFY_HOST=http://127.0.0.1:PORT TFY_API_KEY=tfy_... \
        .venv/bin/python tests/e2e/ml_clients_script.py /tmp/ml-clients-work

TFY_HOST is the server root (the clients add /api/svc/v1/...). TFY_API_KEY must be a `tfy_` key:
`truefoundry` resolves such keys through GET /api/svc/v1/session and decodes any other as a JWT.
TFY_STORAGE_INTEGRATION_FQN optionally overrides the storage integration the repo is created with.
Each run works in a fresh subdirectory of the work dir, so it can be rerun against one server.
The script prints `OK <step>` per step and exits 1 with a traceback at the first failure.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tarfile
import time
import traceback
from pathlib import Path

import joblib
import numpy as np
import requests
import truefoundry_sdk
from sklearn.linear_model import LogisticRegression
from truefoundry.ml import ArtifactPath, SklearnFramework, get_client
from truefoundry.ml.agent_skill import run_skill_download, run_skill_upload
from truefoundry_sdk.core import ApiError

REPO = "tfy-test-repo"
SKILL = "tfy-test-skill"
MIB = 1024 * 1024

# `truefoundry` uploads files of 100 MiB or more in 10 MiB parts through the multipart flow;
# it has no setting to lower that threshold, so the big file is simply big enough.
BIG_FILE_SIZE = 100 * MIB + 4097  # -> 11 parts, the last one short and unaligned


def ok(step: str) -> None:
    print(f"OK {step}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def tree_digest(root: Path) -> dict[str, str]:
    """{posix relative path: sha256} of every file under root."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def same_tree(expected: dict[str, str], root: Path, what: str) -> None:
    got = tree_digest(root)
    check(got == expected, f"{what}: downloaded tree differs\nexpected {expected}\ngot      {got}")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def fresh_dir(work: Path, name: str) -> Path:
    path = work / name
    path.mkdir(parents=True)
    return path


def main(work: Path) -> None:
    host, key = os.environ["TFY_HOST"].rstrip("/"), os.environ["TFY_API_KEY"]
    check(key.startswith("tfy_"), "TFY_API_KEY must be a tfy_ key")
    storage_fqn = os.environ.get("TFY_STORAGE_INTEGRATION_FQN", "depot:default")
    client = get_client()  # logs in: min-cli-version, tenant-id, session
    sdk = truefoundry_sdk.TrueFoundry(base_url=host, api_key=key)

    # 1. ML repo (a no-op when it already exists with the same storage integration).
    client.create_ml_repo(name=REPO, storage_integration_fqn=storage_fqn, description="e2e")
    repo = next(iter(sdk.ml_repos.list(name=REPO, limit=1)))
    check(repo.manifest.name == REPO, f"ml_repos.list(name=) returned {repo.manifest.name!r}")
    ok("create_ml_repo")

    # 2. A folder with a subfolder and an empty file, plus one file placed under a new path.
    src = work / "artifact-src"
    write(src / "a.txt", b"hello depot\n")
    write(src / "empty.txt", b"")
    write(src / "sub" / "b.bin", os.urandom(300_000))
    write(src / "sub" / "deeper" / "c.json", b'{"k": 1}\n')
    single = write(work / "single.txt", b"placed elsewhere\n")
    expected_dir = {**tree_digest(src), "extra/renamed.txt": tree_digest(work)["single.txt"]}
    av = client.log_artifact(
        ml_repo=REPO,
        name="tfy-test-dir",
        artifact_paths=[ArtifactPath(str(src)), ArtifactPath(str(single), "extra/renamed.txt")],
        description="a folder",
        metadata={"kind": "folder"},
        progress=False,
    )
    dir_fqn = av.fqn
    check(dir_fqn.startswith("artifact:") and dir_fqn.endswith(f":{av.version}"), dir_fqn)
    ok(f"log_artifact folder {dir_fqn}")

    # 3. Multipart upload: a file above the clients' 100 MiB threshold.
    big = write(work / "big" / "big.bin", os.urandom(BIG_FILE_SIZE))
    big_av = client.log_artifact(
        ml_repo=REPO,
        name="tfy-test-big",
        artifact_paths=[ArtifactPath(str(big), "big.bin")],
        progress=False,
    )
    ok(f"log_artifact multipart {big_av.fqn}")

    # 4. A real sklearn model saved with joblib.
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)
    model_file = work / "model-src" / "model.joblib"
    model_file.parent.mkdir()
    joblib.dump(model, model_file)
    mv = client.log_model(
        ml_repo=REPO,
        name="tfy-test-model",
        model_file_or_folder=str(model_file),
        framework=SklearnFramework(),
        description="a sklearn model",
        progress=False,
    )
    model_fqn = mv.fqn
    check(model_fqn.startswith("model:"), model_fqn)
    check(mv.framework is not None and mv.framework.type == "sklearn", f"{mv.framework!r}")
    ok(f"log_model {model_fqn}")

    # 5. Get each back by FQN, download into a fresh directory and compare SHA-256s.
    got = client.get_artifact_version_by_fqn(dir_fqn)
    check(got.fqn == dir_fqn and got.description == "a folder", f"{got.fqn} {got.description!r}")
    same_tree(
        expected_dir, Path(got.download(path=fresh_dir(work, "dl-dir"), progress=False)), "dir"
    )
    got_big = client.get_artifact_version_by_fqn(big_av.fqn)
    out = Path(got_big.download(path=fresh_dir(work, "dl-big"), progress=False))
    same_tree({"big.bin": tree_digest(big.parent)["big.bin"]}, out, "multipart")
    got_mv = client.get_model_version_by_fqn(model_fqn)
    info = got_mv.download(path=fresh_dir(work, "dl-model"), progress=False)
    same_tree(tree_digest(model_file.parent), Path(info.download_dir), "model")
    loaded = joblib.load(Path(info.download_dir) / "model.joblib")
    check((loaded.predict(features) == model.predict(features)).all(), "model predicts differently")
    ok("get_by_fqn + download + sha256")

    # 6. Update description, version alias and metadata in place; the version number stays.
    alias = f"v{int(time.time())}-e2e"
    got.description = "updated by ml_clients_script"
    got.version_alias = alias
    got.metadata = {**got.metadata, "updated": True}
    got.update()
    again = client.get_artifact_version_by_fqn(dir_fqn)
    check(again.fqn == dir_fqn, f"update moved the version: {again.fqn}")
    check(again.description == "updated by ml_clients_script", repr(again.description))
    check(again.version_alias == alias, f"{again.version_alias!r} != {alias!r}")
    check(again.metadata.get("updated") is True, f"{again.metadata}")
    got_mv.description = "model description updated"
    got_mv.update()
    check(client.get_model_version_by_fqn(model_fqn).description == got_mv.description, "model")
    ok("update")

    # 7. A second version of the folder artifact, then list the artifact's versions.
    second = client.log_artifact(
        ml_repo=REPO,
        name="tfy-test-dir",
        artifact_paths=[ArtifactPath(str(single))],
        progress=False,
    )
    check(second.version > again.version, f"{second.version} after {again.version}")
    listed = [v.fqn for v in client.list_artifact_versions(ml_repo=REPO, name="tfy-test-dir")]
    check(dir_fqn in listed and second.fqn in listed, f"{listed}")
    ok(f"list_artifact_versions ({len(listed)} versions)")

    # 8. Delete the second version: it disappears from get-by-FQN and the list.
    second.delete()
    try:
        client.get_artifact_version_by_fqn(second.fqn)
        raise AssertionError(f"{second.fqn} still found after delete")
    except ApiError as error:
        check(error.status_code == 404, f"expected 404, got {error.status_code}")
    listed = [v.fqn for v in client.list_artifact_versions(ml_repo=REPO, name="tfy-test-dir")]
    check(second.fqn not in listed and dir_fqn in listed, f"{listed}")
    ok("delete")

    # 9. Agent skill: upload a directory (stage, PUT files + tarball, PUT /apply), download it.
    skill_dir = work / "skill-src"
    skill_md = f"---\nname: {SKILL}\ndescription: A tiny skill for Depot's e2e test.\n---\n# Hi\n"
    write(skill_dir / "SKILL.md", skill_md.encode())
    write(skill_dir / "reference" / "notes.md", b"Extra file shipped with the skill.\n")
    run_skill_upload(repository=REPO, skill_dir=skill_dir)
    skill_versions = list(sdk.agent_skill_versions.list(ml_repo_id=repo.id, name=SKILL))
    check(bool(skill_versions), "no agent-skill version after upload")
    skill_fqn = max((v.fqn for v in skill_versions), key=lambda f: int(f.rsplit(":", 1)[1]))
    check(skill_fqn.startswith("agent-skill:") and f"/{REPO}/{SKILL}:" in skill_fqn, skill_fqn)
    dest = work / "dl-skill"
    run_skill_download(skill_fqn, dest, overwrite=False, progress=False)
    same_tree(tree_digest(skill_dir), dest / SKILL, "skill")
    with tarfile.open(dest / ".truefoundry" / "skill.tar") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    check(names == ["SKILL.md", "reference/notes.md"], f"skill.tar holds {names}")
    ok(f"agent skill upload + download {skill_fqn}")

    # 10. The same flow with truefoundry_sdk alone: stage, PUT, finalize, look up, list, GET.
    files = {"hello.txt": b"from the sdk\n", "nested/data.bin": os.urandom(70_000), "e.txt": b""}
    manifest = dict(name="tfy-test-sdk", ml_repo=REPO, metadata={"via": "sdk"})
    staged = sdk.artifact_versions.stage(
        manifest=truefoundry_sdk.ArtifactManifest(
            **manifest, source=truefoundry_sdk.TrueFoundryManagedSource()
        )
    )
    urls = sdk.artifact_versions.get_signed_urls(
        id=staged.id, paths=list(files), operation=truefoundry_sdk.Operation.WRITE
    ).data
    check([u.path for u in urls] == list(files), f"signed URLs out of order: {urls}")
    for url, data in zip(urls, files.values(), strict=True):
        requests.put(url.signed_url, data=data, timeout=60).raise_for_status()
    applied = sdk.artifacts.create_or_update(
        manifest=truefoundry_sdk.ArtifactManifest(
            **manifest, source=truefoundry_sdk.TrueFoundryManagedSource(uri=staged.storage_root)
        )
    ).data
    version = sdk.artifact_versions.get_by_fqn(fqn=applied.fqn).data
    check(version.id == applied.id and version.artifact_id == staged.artifact_id, f"{version}")
    listed_ids = [v.id for v in sdk.artifact_versions.list(artifact_id=version.artifact_id)]
    check(version.id in listed_ids, f"{version.id} not in {listed_ids}")
    found: list[str] = []
    pending = [""]
    while pending:  # one directory level per call; directories come back with is_dir
        for info in sdk.artifact_versions.list_files(id=version.id, path=pending.pop()):
            (pending if info.is_dir else found).append(info.path)
    check(sorted(found) == sorted(files), f"list_files found {found}")
    reads = sdk.artifact_versions.get_signed_urls(
        id=version.id, paths=list(files), operation=truefoundry_sdk.Operation.READ
    ).data
    for url, (path, data) in zip(reads, files.items(), strict=True):
        response = requests.get(url.signed_url, timeout=60)
        response.raise_for_status()
        check(response.content == data, f"{path}: read back {len(response.content)} bytes")
    ok(f"truefoundry_sdk stage/put/finalize/list/read {applied.fqn}")

    # A staged version marked as failed never shows up.
    failed = sdk.artifact_versions.stage(
        manifest=truefoundry_sdk.ArtifactManifest(
            **manifest, source=truefoundry_sdk.TrueFoundryManagedSource()
        )
    )
    sdk.artifact_versions.mark_stage_failure(id=failed.id)
    listed_ids = [v.id for v in sdk.artifact_versions.list(artifact_id=version.artifact_id)]
    check(failed.id not in listed_ids, "a failed staged version is listed")
    ok("truefoundry_sdk mark_stage_failure")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} WORK_DIR (with TFY_HOST and TFY_API_KEY set)")
    for name in ("truefoundry", "truefoundry.ml"):  # both log INFO lines to stdout by default
        logging.getLogger(name).setLevel(logging.WARNING)
    run_dir = Path(sys.argv[1]).resolve() / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    try:
        main(run_dir)
    except Exception:
        traceback.print_exc()
        print("FAILED", file=sys.stderr)
        sys.exit(1)
    print("ALL OK")
