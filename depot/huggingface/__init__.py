"""The Hugging Face Hub protocol over Depot's core: repos are artifacts, commits are versions.

A repo id is ``{space}/{artifact}`` under an endpoint per org (``/hf/{org}``). The wire
protocol, as huggingface_hub speaks it, is described in docs/huggingface.md.
"""
