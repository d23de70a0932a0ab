"""Depot: a self-hosted registry for ML models, agent skills and other artifacts."""

__version__ = "0.1.0"

__all__ = ["__version__"]
