"""Fixtures for the real-browser tests (JupyterLab 4 / Notebook 7 in Debian's Chromium)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from . import harness as H


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if not H.CHROMIUM.exists():
        reason = (
            f"needs Debian's chromium at {H.CHROMIUM} (apt-get install chromium; never `playwright install`)"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "needs the playwright Python package"
    for item in items:
        if "tests/browser/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """On a failed test, keep a full-page screenshot, the server log and the browser errors
    of every session it used (taken now, while the page is still open)."""
    rep = yield
    if rep.when == "call" and rep.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, H.Session):
                value.save_failure_artifacts(f"{item.name}-{value.server.app}")
    return rep


@pytest.fixture(scope="module")
def pw() -> Iterator[Any]:
    """One Playwright driver per module (two sync drivers cannot nest in one thread). Not per
    session: a live sync driver keeps an event loop running in the main thread, which would
    break every asyncio test collected after the browser tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


WATCHDOG_S = float(os.environ.get("BW_BROWSER_WATCHDOG_S", "240"))


@pytest.fixture(autouse=True)
def _watchdog(request: pytest.FixtureRequest) -> Iterator[None]:
    """Last line of defence against a hang no deadline covers (e.g. a page.evaluate on a frozen
    page): after WATCHDOG_S seconds, SIGKILL the Chromium processes this test run started (by
    pid, found under our own process), so the blocked Playwright call raises and the fixtures
    stop the servers."""
    if "tests/browser/" not in request.node.nodeid.replace("\\", "/"):
        yield
        return
    import signal
    import threading
    from pathlib import Path

    def fire() -> None:
        H.log(f"WATCHDOG: {request.node.name} ran over {WATCHDOG_S}s; killing its browser")
        for pid in H.descendants(os.getpid()):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm.startswith("chrom"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(WATCHDOG_S, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
