"""Pictures the browser tests take of the screens they drive, saved under build/screenshots/
(git-ignored) on every run. The ones shown in the docs (docs/images/) are copied from such a
run: a picture is looked at, not checked, so no test compares them."""

from __future__ import annotations

from pathlib import Path

from tests.stack import ROOT

SCREENSHOTS = ROOT / "build" / "screenshots"


def save(driver, name: str) -> Path:
    """The browser's viewport as build/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"chromium could not save {path}"
    return path
