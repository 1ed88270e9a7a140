"""Front-end detection and Colab's conveniences: the key from Colab's secrets, a warning for a
manifest in /content. Colab is emulated by a fake ``google.colab`` module (as anywidget's own
tests do); the fake records that it was asked, so each test proves the Colab path ran."""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import batch_widget as bw
from batch_widget import frontends
from batch_widget.simulator import Simulator

from .conftest import SECRET_KEY


class FakeUserdata:
    """Stands in for google.colab.userdata: a secrets store that records what was asked."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.asked: list[str] = []

    def get(self, name: str) -> str:
        self.asked.append(name)
        if name not in self.secrets:
            raise KeyError(f"Secret {name} does not exist.")  # Colab raises SecretNotFoundError
        return self.secrets[name]


@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUserdata]:
    userdata = FakeUserdata({})
    google = types.ModuleType("google")
    colab_module = types.ModuleType("google.colab")
    colab_module.userdata = userdata  # type: ignore[attr-defined]
    google.colab = colab_module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab_module)
    monkeypatch.delenv("TWELVELABS_API_KEY", raising=False)
    yield userdata


def test_detection_outside_any_front_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not frontends.in_colab() and frontends.colab_secret("TWELVELABS_API_KEY") is None
    assert not frontends.in_marimo()  # marimo may be installed, but no notebook is running here
    monkeypatch.setenv("VSCODE_PID", "123")
    assert frontends.in_vscode()


async def test_in_colab_the_key_comes_from_the_secrets_panel(colab: FakeUserdata, sim: Simulator) -> None:
    colab.secrets["TWELVELABS_API_KEY"] = SECRET_KEY
    assert frontends.in_colab()
    async with bw.BatchClient(base_url=sim.base_url) as client:
        assert (await client.list_page(1)).total_results == 0  # the simulator accepted the key
    assert colab.asked == ["TWELVELABS_API_KEY"]
    assert SECRET_KEY not in repr(client)


def test_in_colab_a_missing_key_names_both_places(colab: FakeUserdata) -> None:
    with pytest.raises(bw.ConfigurationError) as info:
        bw.BatchClient()
    message = str(info.value)
    assert "TWELVELABS_API_KEY environment variable" in message and "Colab's Secrets panel" in message
    assert colab.asked == ["TWELVELABS_API_KEY"]


def test_the_environment_variable_wins_over_colab_secrets(
    colab: FakeUserdata, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWELVELABS_API_KEY", "tlk_from_the_environment")
    bw.BatchClient(base_url="http://127.0.0.1:9/v1.3")
    assert colab.asked == []


def test_outside_colab_a_missing_key_does_not_mention_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWELVELABS_API_KEY", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(bw.ConfigurationError) as info:
        bw.BatchClient()
    assert "Colab" not in str(info.value) and "TWELVELABS_API_KEY" in str(info.value)


async def test_a_manifest_in_colab_content_warns_once(
    colab: FakeUserdata, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tmp_path / "content"
    monkeypatch.setattr(frontends, "COLAB_CONTENT", content)
    df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 4)]})
    async with bw.BatchClient(SECRET_KEY, base_url=sim.base_url) as client:
        with pytest.warns(UserWarning, match="runtime reset deletes") as caught:
            job = bw.submit(df, prompt="Summarise.", client=client, manifest=content / "job.manifest.json")
        assert len([w for w in caught if "runtime reset" in str(w.message)]) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the same manifest again: said once is enough
            bw.submit(df, prompt="Summarise.", client=client, manifest=content / "job.manifest.json")
            # on Drive: no warning
            bw.submit(df, prompt="Summarise.", client=client, manifest=content / "drive" / "MyDrive" / "j.json")
        for live in bw.jobs.live_jobs.values():
            live.close()
        bw.jobs.live_jobs.clear()
        del job
