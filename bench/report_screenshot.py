"""docs/report.png: a screenshot of the HTML report `make demo` writes.

Runs `driftmon demo` in a temporary folder (real GPT-4 answers from March and June 2023,
replayed by the simulated provider; see monitor/demo.py) and photographs its report.html with
headless Chromium.

    .venv/bin/python bench/report_screenshot.py [--out docs/report.png] [--keep DIR]

--keep DIR leaves the demo folder (config, database, report.html) in DIR.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WINDOW = (1200, 1600)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    raise SystemExit("no chromium found: install it (Debian: apt-get install chromium)")


def screenshot(html: Path, png: Path) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            chromium(),
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def demo_report(folder: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"driftmon demo: exit {done.returncode}\n{done.stdout}{done.stderr}")
    report = folder / "report.html"
    if not report.is_file():
        raise SystemExit(f"driftmon demo wrote no report.html\n{done.stdout}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report.png")
    parser.add_argument("--keep", type=Path, help="run the demo here and keep its folder")
    args = parser.parse_args()
    if args.keep is not None:
        screenshot(demo_report(args.keep), args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="driftmon-report-") as folder:
            screenshot(demo_report(Path(folder) / "demo"), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
