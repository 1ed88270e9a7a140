"""The package's version, read from its installed metadata (``pyproject.toml`` is the one source)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("batch-widget")
except PackageNotFoundError:  # imported from a source tree that was never installed
    VERSION = "0+unknown"
