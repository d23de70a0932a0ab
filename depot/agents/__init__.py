"""Artifacts that agents produce in threads: versions, TTL, download links, semantic query."""
