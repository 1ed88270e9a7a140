"""Which front end the kernel serves, and what each one needs of us; detection in one place.

The live view works the same everywhere (push, and pull for front ends that drop background
messages: see :mod:`batch_widget.views`); what differs is found here: Colab's secrets and its
wiped ``/content``, marimo's own display of widgets. Each check is cheap and imports nothing
that the front end does not already have loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["COLAB_CONTENT", "colab_secret", "in_colab", "in_marimo", "in_vscode", "under_colab_content"]

#: Colab's working directory: wiped when the runtime is reset (Drive is what survives)
COLAB_CONTENT = Path("/content")


def in_colab() -> bool:
    """True in a Google Colab runtime (its ``google.colab`` module is loaded by the kernel)."""
    return "google.colab" in sys.modules


def in_marimo() -> bool:
    """True inside a running marimo notebook or app."""
    marimo = sys.modules.get("marimo")
    if marimo is None:
        return False
    running = getattr(marimo, "running_in_notebook", None)
    try:
        return bool(running()) if callable(running) else False
    except Exception:  # an older marimo, or not in a cell: not marimo's runtime
        return False


def in_vscode() -> bool:
    """True when the kernel was started by VS Code's Jupyter extension."""
    return "VSCODE_PID" in os.environ or os.environ.get("VSCODE_CWD") is not None


def colab_secret(name: str) -> str | None:
    """The value of Colab secret ``name`` (the Secrets panel), or None outside Colab, when it is
    not set, or when this notebook was not granted access to it."""
    if not in_colab():
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        value = userdata.get(name)
    except Exception:  # SecretNotFoundError, NotebookAccessError, a timeout: treat as not set
        return None
    return value if isinstance(value, str) and value.strip() else None


def under_colab_content(path: Path) -> bool:
    """True when ``path`` lies in Colab's ``/content`` but not on a mounted Drive."""
    try:
        resolved = path.resolve()
    except OSError:
        return False
    return resolved.is_relative_to(COLAB_CONTENT) and not resolved.is_relative_to(COLAB_CONTENT / "drive")
