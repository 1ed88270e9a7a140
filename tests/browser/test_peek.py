"""Peek in a real JupyterLab: the button fetches the first finished items while the batch runs,
shows them in the table under the bar (a hostile error as text), and nothing of them is kept in
the static summary that replaces the view at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from . import harness as H

EVIL = H.EVIL
NOTEBOOK = "peek.ipynb"


def _write_notebook(path: Any) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import batch_widget as bw\n"
            "from batch_widget.simulator import Simulator\n"
            f"EVIL = {EVIL!r}\n"
            "# the second item fails with a hostile error code; items take 20-40 simulated seconds\n"
            "sim = Simulator(speed=2, seed=3, items_at_once=4, item_seconds=(20.0, 40.0), startup_seconds=(1.0, 2.0),\n"
            "                outcomes={'v-01': f'failed:{EVIL}'}).start()\n"
            "client = bw.BatchClient(sim.api_key, base_url=sim.base_url)\n"
            "created = await client.create(analysis_mode='general', defaults={'prompt': {'input_text': 'x'}},\n"
            "    requests=[{'video': {'type': 'asset_id', 'asset_id': f'{i + 1:024x}'}, 'custom_id': f'v-{i:02d}'}\n"
            "              for i in range(40)])\n"
            "w = bw.watch(created.batch_id, client, schedule=bw.Schedule(min_interval=1, max_interval=2))"
        ),
        nbformat.v4.new_code_cell("sim.clock.set_speed(400)  # let it finish"),
    ]
    nbformat.write(nb, path)


@pytest.fixture
def lab(pw: Any) -> Iterator[H.Session]:
    with H.notebook_session(pw, "lab", speed=5) as s:
        _write_notebook(s.root / NOTEBOOK)
        yield s


def test_peek_shows_the_first_finished_items_as_text(lab: H.Session) -> None:
    nb = lab.nb
    page = nb.page
    H.open_lab_notebook(lab, NOTEBOOK)

    H.run_code_cell(page, 0)
    root = page.locator(".bw-root")
    # v-01 (the hostile one) has failed and a few are ready; peek lists finished items in request
    # order, so v-01 is among the first two it shows
    def counted(name: str) -> int:
        return int(root.get_attribute(f"data-{name}") or 0) if root.count() == 1 else 0

    H.wait_until(lambda: counted("failed") >= 1 and counted("ready") >= 2, 120, "a failed and a few ready items")
    assert root.get_attribute("data-terminal") == "false"
    assert not page.locator(".bw-peek").is_visible()  # nothing fetched before the button
    page.locator(".bw-root .bw-peek-btn").click()
    rows = page.locator(".bw-peek-row")
    H.wait_until(lambda: rows.count() >= 2, 30, "the peek's rows")
    failed = page.locator(".bw-peek-row[data-status='failed'] .bw-peek-text")
    H.wait_until(lambda: failed.count() == 1, 30, "the failed row")
    assert EVIL in failed.first.inner_text()  # the hostile code, as text
    ready = page.locator(".bw-peek-row[data-status='ready'] .bw-peek-text")
    assert ready.count() >= 1 and len(ready.first.inner_text()) > 10
    output = ready.first.inner_text()[:40]
    H.assert_no_injection(page, ".bw-root")
    assert page.locator(".bw-peek-cancel").is_visible()  # Cancel next to it, while it runs
    nb.screenshot(page.locator(".bw-root"), "lab-peek.png")

    H.run_code_cell(page, 1)  # finish the batch: the static summary replaces the view, with no output in it
    static = page.locator(".bw-static")
    H.wait_until(lambda: static.count() == 1, 60, "the static summary")
    summary = static.inner_text()
    assert "completed" in summary and EVIL not in summary and output not in summary
    assert page.locator(".bw-peek-row").count() == 0
    H.assert_no_injection(page, ".jp-Notebook")
    nb.errors.assert_clean()
