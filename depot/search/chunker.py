"""Cutting text into chunks small enough for the embedding model, on natural boundaries."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["chunk_text"]

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str) -> list[str]:
    pieces: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if paragraph:
            pieces.extend(part.strip() for part in _SENTENCE.split(paragraph) if part.strip())
    return pieces


def _split_long(piece: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """A piece over the budget, cut on word boundaries into windows that fit."""
    words = piece.split()
    windows: list[str] = []
    current: list[str] = []
    for word in words:
        candidate = " ".join([*current, word])
        if current and count_tokens(candidate) > max_tokens:
            windows.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        windows.append(" ".join(current))
    return windows


def chunk_text(
    text: str, count_tokens: Callable[[str], int], *, max_tokens: int = 200
) -> list[str]:
    """Chunks of at most ``max_tokens`` tokens, made of whole sentences where possible.

    Paragraphs and sentences are kept together while they fit; a sentence longer
    than the budget is cut between words. Empty text gives no chunks.
    """
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for piece in _pieces(text):
        size = count_tokens(piece)
        if size > max_tokens:
            if current:
                chunks.append(" ".join(current))
                current, used = [], 0
            chunks.extend(_split_long(piece, count_tokens, max_tokens))
            continue
        if current and used + size > max_tokens:
            chunks.append(" ".join(current))
            current, used = [], 0
        current.append(piece)
        used += size
    if current:
        chunks.append(" ".join(current))
    return chunks
