"""Notebook 7: Run All on the quickstart; the widget advances, then pins a "completed" summary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from . import harness as H
from .flows import CODE_CELLS, run_all_until_complete

SPEED = 60.0


@pytest.fixture
def nb7(pw: Any) -> Iterator[H.Session]:
    with H.notebook_session(pw, "notebook", speed=SPEED) as s:
        yield s


def test_notebook7_run_all_completes(nb7: H.Session) -> None:
    nb = nb7.nb
    nb.open()
    assert nb.prompts() == ["[ ]:"] * CODE_CELLS, nb.prompts()
    run_all_until_complete(nb, running_shot="notebook7-running.png", final_shot="notebook7-final.png")
    nb.errors.assert_clean()  # only Notebook 7's own 'schema' page error is allowed
