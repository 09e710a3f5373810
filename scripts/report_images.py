"""Save the charts of a comparison report (``report.html``) as PNG files, for the README.

    python scripts/report_images.py reports/lfw7 docs --prefix lfw7-

Opens the self-contained report in headless Chromium (``/usr/bin/chromium``, or Playwright's own)
and screenshots each chart whose title is listed in ``CHARTS``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

CHARTS = {"Training curves": "curves", "Accuracy and F1": "scores"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="folder holding report.html")
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    parser.add_argument("--prefix", default="")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    chromium = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto((args.report / "report.html").resolve().as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg", timeout=60_000)
        for title, name in CHARTS.items():
            chart = page.locator(".plotly-graph-div").filter(has_text=title).first
            path = args.out / f"{args.prefix}{name}.png"
            chart.screenshot(path=str(path))
            print(path)
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
