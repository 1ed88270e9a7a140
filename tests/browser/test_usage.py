"""JupyterLab 4: the usage line at the end of a job and of a batch, in light and dark (screenshots).

A small notebook made here: six assets made by URL on the in-kernel simulator, a job of them
(``await job.wait()`` measures its usage), and a bare batch of the same assets watched with
``bw.watch`` (``await w.usage(assets=...)``). Both displays end as their static summary, which
carries the usage line (content hours, tokens, items not billed); its text keeps a 4.5:1 contrast
in JupyterLab Light and Dark. Screenshots: ``test-artifacts/screenshots/usage-{job,batch}-{light,dark}.png``.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import harness as H

SPEED = 60.0
CELLS = [
    """import os
import pandas as pd
import batch_widget as bw
from batch_widget.simulator import Simulator

sim = Simulator(speed=float(os.environ.get("BW_DEMO_SPEED", "60")), seed=4, fail_rate=0.2, item_seconds=(20, 60),
                asset_processing_seconds=(5, 10)).start()
client = bw.BatchClient(sim.api_key, base_url=sim.base_url)
ids = [(await client.create_asset(url=f"https://cdn.example.com/clip-{i}.mp4")).id for i in range(6)]
await client.wait_ready(ids, poll_interval=0.5)
keys = [f"clip-{i}" for i in range(6)]""",
    """job = bw.submit(pd.DataFrame({"asset_id": ids, "key": keys}), prompt="Summarise the video.", key="key",
                client=client, manifest="usage.manifest.json")
job""",
    """final = await job.wait()""",
    """created = await client.create(analysis_mode="general", defaults={"prompt": {"input_text": "Summarise."}},
                               requests=[{"video": {"type": "asset_id", "asset_id": a}, "custom_id": k}
                                         for k, a in zip(keys, ids)])
w = bw.watch(created.batch_id, client)""",
    """await w.wait()
used = await w.usage(assets=dict(zip(keys, ids)))
print(used.describe())""",
]


def notebook(path: Path) -> Path:
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
              "source": src} for i, src in enumerate(CELLS)]  # fmt: skip
    nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
          "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    path.write_text(json.dumps(nb))
    return path


@pytest.fixture(scope="module")
def usage_lab(pw: Any) -> Iterator[H.Session]:
    with tempfile.TemporaryDirectory() as tmp:
        nb_path = notebook(Path(tmp) / "usage_line.ipynb")
        with H.notebook_session(pw, "lab", speed=SPEED, notebook=nb_path) as s:
            yield s


def test_the_usage_line_ends_both_widgets_in_light_and_dark(usage_lab: H.Session) -> None:
    nb = usage_lab.nb
    nb.open()
    nb.menu("Run", "Run All Cells")
    nb.wait_executed(len(CELLS), timeout=90)
    job_cell, batch_cell = nb.code_cell("job = bw.submit("), nb.code_cell("w = bw.watch(")
    summaries = {}
    for name, cell, static in (("job", job_cell, ".bw-job-static"), ("batch", batch_cell, ".bw-static")):
        usage = cell.locator(f"{static} .bw-usage")
        usage.wait_for(timeout=15_000)
        text = usage.inner_text()
        assert re.fullmatch(r"usage: \d+\.\d+ h analysed \(\d+ completed\) · [\d.,kM]+ in / [\d.,kM]+ out tokens"
                            r"( · not billed: \d+ failed, \d+ canceled)?", text), text  # fmt: skip
        assert cell.locator(".bw-root").count() == 0, f"the {name} view was not replaced by its summary"
        summaries[name] = text
    printed = "\n".join(nb.code_cell("used = await w.usage(").locator(".jp-OutputArea-output").all_inner_texts())
    assert summaries["batch"].removeprefix("usage: ") in printed, (summaries, printed)
    cells = (("job", job_cell), ("batch", batch_cell))
    light = {name: H.low_contrast(cell.locator(".bw-usage")) for name, cell in cells}
    nb.screenshot(job_cell, "usage-job-light.png")
    nb.screenshot(batch_cell, "usage-batch-light.png")

    nb.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Settings$")).click()
    nb.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    nb.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    nb.page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=15_000)
    time.sleep(0.5)  # the theme's stylesheet settles
    dark = {name: H.low_contrast(cell.locator(".bw-usage")) for name, cell in cells}
    nb.screenshot(job_cell, "usage-job-dark.png")
    nb.screenshot(batch_cell, "usage-batch-dark.png")
    nb.errors.assert_clean()
    assert not any(light.values()) and not any(dark.values()), f"usage line below 4.5:1: {light} {dark}"
