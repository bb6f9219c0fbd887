"""A picture of a report: headless Chromium renders an HTML file to PNG (for the README).

    python -m host.systems.screenshot demo.html docs/demo-report.png

Nothing leaves the machine: the report is a local file with no network access
(inline CSS and SVG), and the browser runs with its background networking,
component updates and sync off, in a throwaway profile.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["chromium", "screenshot"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium() -> str | None:
    """The headless browser's path, or None (Debian: `apt-get install chromium`)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(page: Path, out: Path, *, width: int = 1200, height: int = 1500) -> Path:
    """Render `page` (an HTML file) to the PNG `out`, `width` x `height` CSS pixels.

    Raises:
        RuntimeError: no Chromium here, or it wrote no PNG.
    """
    browser = chromium()
    if browser is None:
        raise RuntimeError("no chromium here (apt-get install --no-install-recommends chromium)")
    with tempfile.TemporaryDirectory(prefix="cardemu-shot-") as profile:
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
        ]
        subprocess.run(
            [browser, *flags, page.resolve().as_uri()],
            capture_output=True,
            timeout=120,
            cwd=profile,
            check=False,
        )
    if not out.exists() or out.read_bytes()[:8] != PNG_MAGIC:
        raise RuntimeError(f"chromium wrote no PNG to {out}")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m host.systems.screenshot REPORT.html OUT.png")
    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
