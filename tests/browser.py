"""The web UI in a real browser: the distribution's Chromium (never a downloaded one) driven by Playwright,
against a real `provgraph serve` process. Used by tests/test_ui_browser.py and bench/bench_ui.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Playwright

from provgraph.api.server import free_port

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# The machine's network is closed: without these Chromium keeps dialling Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class BrowserMissing(RuntimeError):
    pass


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed by scripts/infra/chromium.sh when missing (idempotent)."""
    if not CHROMIUM.exists():
        script = REPO / "scripts" / "infra" / "chromium.sh"
        done = subprocess.run([str(script), "ensure"], capture_output=True, text=True, check=False)
        if done.returncode != 0 or not CHROMIUM.exists():
            raise BrowserMissing(f"no Chromium for the browser tests: {done.stderr.strip() or 'chromium.sh failed'}")
    return CHROMIUM


def launch(playwright: Playwright) -> Browser:
    """Headless Chromium with a fresh profile (Playwright makes a new user-data-dir for each launch)."""
    return playwright.chromium.launch(executable_path=str(ensure_chromium()), headless=True, args=CHROMIUM_ARGS)


@contextmanager
def serve(
    home: Path, *, extra_env: dict[str, str] | None = None, start_timeout: float = 120, insecure_local: bool = False
) -> Iterator[str]:
    """`provgraph serve` (with tokens, or `--insecure-local`) on the embedded store in `home`; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVGRAPH_")}
    env.update(PROVGRAPH_HOME=str(home), **(extra_env or {}))
    cli = Path(sys.executable).parent / "provgraph"
    log = home.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        args = [str(cli), "serve", "--port", str(port), *(["--insecure-local"] if insecure_local else [])]
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"provgraph serve did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
