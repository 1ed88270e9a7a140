"""Hostile strings from the server are shown as text: no element injected, no script run.

A simulator answers with an error message (and later a batch status) carrying HTML and JS; the
live widget's banner and pill, and the static summary that replaces it, must show them as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from . import harness as H

EVIL = H.EVIL
NOTEBOOK = "hostile.ipynb"


def _write_notebook(path: Any) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import batch_widget as bw\n"
            "from batch_widget.simulator import Fault, Simulator\n"
            f"EVIL = {EVIL!r}\n"
            "sim = Simulator(speed=5, seed=1).start()\n"
            "client = bw.BatchClient(sim.api_key, base_url=sim.base_url)\n"
            "created = await client.create(analysis_mode='general', defaults={'prompt': {'input_text': 'x'}},\n"
            "                              requests=[f'{i:024x}' for i in range(1, 11)])\n"
            "sim.add_fault(Fault(kind='patch_batch', endpoint='get', patch={'status': EVIL}, times=None))\n"
            "w = bw.watch(created.batch_id, client, schedule=bw.Schedule(min_interval=0.5, max_interval=1))"
        ),
        nbformat.v4.new_code_cell(
            "sim.add_fault(Fault(kind='status', endpoint='get', status=503, message=EVIL, times=None))"
        ),
        nbformat.v4.new_code_cell(
            "sim.clear_faults()\n"
            "sim.add_fault(Fault(kind='status', endpoint='get', status=404, message=EVIL, times=None))"
        ),
    ]
    nbformat.write(nb, path)


@pytest.fixture
def lab(pw: Any) -> Iterator[H.Session]:
    with H.notebook_session(pw, "lab", speed=5) as s:
        _write_notebook(s.root / NOTEBOOK)
        yield s


def test_hostile_server_strings_are_text(lab: H.Session) -> None:
    nb = lab.nb
    page = nb.page
    H.open_lab_notebook(lab, NOTEBOOK)

    H.run_code_cell(page, 0)
    pill = page.locator(".bw-root .bw-pill")
    H.wait_until(lambda: pill.count() == 1 and "<img" in pill.inner_text(), 30, "the hostile status as text")
    H.assert_no_injection(page, ".bw-root")

    H.run_code_cell(page, 1)
    banner = page.locator(".bw-root .bw-error")
    H.wait_until(lambda: banner.is_visible() and EVIL in banner.inner_text(), 30, "the hostile error as text")
    H.assert_no_injection(page, ".bw-root")
    nb.screenshot(page.locator(".bw-root"), "lab-hostile-banner.png")

    H.run_code_cell(page, 2)  # a fatal 404 carrying the hostile message: the display is pinned with it
    static = page.locator(".bw-static")
    H.wait_until(lambda: static.count() == 1 and EVIL in static.inner_text(), 30, "the static summary")
    H.assert_no_injection(page, ".jp-Notebook")
    nb.errors.assert_clean()
