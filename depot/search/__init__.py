"""Semantic search: chunk text, embed it offline, and rank chunks by similarity."""
