"""Screenshots of the web app for the README: start it, drive Debian chromium, save each tab as a PNG.

The Translate tab is shown translating the shipped label-map example with the first translation model of
``--models`` (e.g. the model ``i2i demo`` trains, exported with ``i2i weights convert``); the other tabs as
they are. Needs Playwright and /usr/bin/chromium, like the browser tests::

    i2i demo && i2i weights convert runs/demo/checkpoints/last.safetensors -o models/pix2pix_demo.safetensors
    python apps/screenshots.py --models models --out docs
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="folder of models for the app")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the PNGs go (default docs/)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--all-tabs", action="store_true", help="also app_upscale.png, app_models.png...")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from playwright.sync_api import sync_playwright

    from i2i_app import AppSettings, launch
    from i2i_app.ui import EXAMPLES

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo, url = launch(AppSettings(port=port, models_dir=args.models), block=False, quiet=True)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.set_default_timeout(120_000)
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#tr-input input[type=file]").set_input_files(str(EXAMPLES / "facade_labels.png"))
            page.locator("#tr-run").click()
            page.locator("#tr-output img").wait_for()
            page.wait_for_timeout(500)  # let the image fade in
            page.screenshot(path=str(args.out / "app_translate.png"))
            for tab, name in (("Upscale", "upscale"), ("Text to image", "text2image"), ("Models", "models")):
                if args.all_tabs and page.get_by_role("tab", name=tab).count():
                    page.get_by_role("tab", name=tab).click()
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(args.out / f"app_{name}.png"))
            browser.close()
    finally:
        demo.close()
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
