"""The browser harness: Debian's Chromium driven by Playwright, axe-core checks, screenshots.

    def test_something(site: Browsing) -> None:
        page = site.new_page()
        page.goto(site.url + "/sign-in")
        site.check_accessibility(page)

`open_browser()` starts Chromium from the system (`apt-get install chromium`; Playwright's own
browser download is never used). A test's pages are screenshot into build/browser-failures when it
fails (`keep_screenshots_on_failure`). `check_accessibility` runs axe-core (npm, node_modules) in the
page and fails on any serious or critical violation. With `SCTE_SCREENSHOT_DIR` set, `shoot(page, name)`
saves the page there (how docs/images is made).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

__all__ = ["AXE_SCRIPT", "FAILURES", "Browsing", "open_browser"]

ROOT = Path(__file__).resolve().parents[2]
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FAILURES = ROOT / "build" / "browser-failures"
BLOCKING_IMPACTS = ("serious", "critical")


@contextmanager
def open_browser() -> Iterator[Browser]:
    """Headless Debian Chromium for the block."""
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Browsing:
    """One test's browser contexts on the site at `url` (each context: one person, own cookies)."""

    browser: Browser
    url: str
    test_name: str
    contexts: list[BrowserContext] = field(default_factory=list)

    def new_context(self, *, javascript: bool = True) -> BrowserContext:
        # bypass_csp lets the tests inject axe-core into pages whose policy allows our own scripts only.
        context = self.browser.new_context(
            base_url=self.url, java_script_enabled=javascript, bypass_csp=True, viewport={"width": 1100, "height": 900}
        )
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        return context

    def new_page(self, *, javascript: bool = True) -> Page:
        return self.new_context(javascript=javascript).new_page()

    def check_accessibility(self, page: Page) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it is now; fails on a serious or critical one."""
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.add_script_tag(path=str(AXE_SCRIPT))
        violations: list[dict[str, Any]] = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        blocking = [v for v in violations if v.get("impact") in BLOCKING_IMPACTS]
        assert not blocking, f"axe-core on {page.url}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}" for v in blocking
        )
        return violations

    def shoot(self, page: Page, name: str) -> None:
        """The page as docs/images/<name>.png, when SCTE_SCREENSHOT_DIR asks for screenshots."""
        folder = os.environ.get("SCTE_SCREENSHOT_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)

    def keep_screenshots(self) -> list[Path]:
        """Every open page as build/browser-failures/<test>-<n>.png (called when the test failed)."""
        FAILURES.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.test_name)[:120]
        kept = []
        for i, page in enumerate(p for c in self.contexts for p in c.pages):
            path = FAILURES / f"{safe}-{i}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                kept.append(path)
            except Exception:  # a crashed page: the other screenshots still matter
                continue
        return kept

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()
