"""Serving a bundle over HTTP: :func:`create_app` (FastAPI) with micro-batching, limits and an optional API key."""

from __future__ import annotations

from .app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
