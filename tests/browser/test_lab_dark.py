"""JupyterLab 4 in the "JupyterLab Dark" theme: Run All, the live view advances, the batch
completes, and the static summary's counts match the simulator's. Then text contrast."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from . import harness as H
from .flows import run_all_until_complete

SPEED = 60.0
CONTRAST: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="module")
def lab_dark(pw: Any) -> Iterator[H.Session]:
    with H.notebook_session(pw, "lab", speed=SPEED, theme="JupyterLab Dark") as s:
        yield s


def test_lab_dark_theme_run_all_completes(lab_dark: H.Session) -> None:
    nb = lab_dark.nb
    nb.open()
    theme = nb.page.evaluate("[document.body.dataset.jpThemeName, document.body.dataset.jpThemeLight]")
    assert theme == ["JupyterLab Dark", "false"], theme
    run_all_until_complete(nb, running_shot="lab-dark-running.png", final_shot="lab-dark-final.png",
                           contrast=CONTRAST)  # fmt: skip
    nb.errors.assert_clean()


def _low(kind: str) -> list[dict[str, Any]]:
    if kind not in CONTRAST:
        pytest.skip("test_lab_dark_theme_run_all_completes did not measure it")
    return [r for r in CONTRAST[kind] if r["ratio"] is None or r["ratio"] < 4.5]


def test_lab_dark_live_widget_text_contrast() -> None:
    low = _low("live")
    assert not low, f"live widget text below 4.5:1 contrast in the dark theme: {low}"


def test_lab_dark_static_summary_text_contrast() -> None:
    low = _low("static")
    assert not low, f"static summary text below 4.5:1 contrast in the dark theme: {low}"
