"""The API key never reaches a saved notebook, its HTML export, a trait, a repr or a log.

Runs the quickstart notebook the way a user with a real key would (the key and base URL from
the environment), against a simulator in this process that accepts that key, with widget state
stored, then exports it to HTML.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from batch_widget.simulator import Simulator

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
KEY = "tlk_NOTEBOOK_SECRET_5f1e2d3c4b5a"


def test_quickstart_with_a_key_leaves_no_trace_of_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Simulator(api_key=KEY, seed=4, speed=900.0) as sim:
        monkeypatch.setenv("TWELVELABS_API_KEY", KEY)
        monkeypatch.setenv("TWELVELABS_BASE_URL", sim.base_url)
        monkeypatch.setenv("BW_ASSET_IDS", ",".join(f"{i:024x}" for i in range(1, 21)))
        monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
        client = NotebookClient(nb, timeout=180, kernel_name="python3", store_widget_state=True,
                                resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
        client.execute()
        # leave a repr, a str, the watch and every trait of its widget in the saved outputs too
        extra = nbformat.v4.new_code_cell(
            "import logging\n"
            "print(repr(client), str(client), repr(w), repr(w.widget), w.widget.get_state())\n"
            "print(created, final)"
        )
        nb.cells.append(extra)
        client = NotebookClient(nb, timeout=60, kernel_name="python3", store_widget_state=True,
                                resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
        client.execute()
    saved = tmp_path / "quickstart.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert "completed:" in text and "completed:" in html  # the final summary is there...
    assert "BatchClient(base_url=" in text and "api_key=***" in text
    for where, content in (("ipynb", text), ("html", html)):
        assert KEY not in content, f"the API key leaked into the {where}"
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    assert KEY not in json.dumps(state)
