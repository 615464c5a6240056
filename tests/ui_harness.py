"""Helpers for tests/test_ui.py: `dagster dev` on loopback in its own process group, and headless
Debian Chromium driven by Selenium through Debian's chromedriver (nothing is downloaded at run time)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = ("`make test` installs them (apt-get install -y chromium chromium-driver, and the [test] extra "
                "with selenium); run the suite through `make test`, or install them by hand")

# Headless Chromium as root on a machine whose only network is loopback and the package mirrors.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-default-apps",
    "--metrics-recording-only", "--password-store=basic", "--window-size=1600,1000",
]


def require_browser() -> None:
    """Skip, saying why and how to get them, when Chromium and its driver are missing (`make test`
    installs them where it can: it needs apt-get and root or sudo); fail instead where
    ``PHI4_REQUIRE_UI_TEST=1`` (CI sets it: there the UI test must run)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        message = (f"{', '.join(missing)} not found: Debian's chromium and chromium-driver are needed; "
                   f"{INSTALL_HINT}")
        if os.environ.get("PHI4_REQUIRE_UI_TEST") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(f"the Dagster UI test needs a browser. {message}")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail(f"the selenium package is not installed in {sys.prefix}; {INSTALL_HINT}", pytrace=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.5,
             on_timeout: Callable[[], str] | None = None, soft: bool = False):
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout_s`` (or, with
    ``soft``, return None)."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # noqa: BLE001 - keep polling, report the last one
            last_error = err
        if time.monotonic() > deadline:
            if soft:
                return None
            extra = on_timeout() if on_timeout else ""
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}"
                        f"{f' (last error: {last_error!r})' if last_error else ''}{extra}", pytrace=False)
        time.sleep(interval_s)


class DagsterDev:
    """`dagster dev -f definitions.py` (webserver + daemon: the instance's queued run coordinator needs
    the daemon to start runs) on the tiny profile with throwaway state."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "dagster-dev.log"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        home = self.root / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PHI4_", "DAGSTER_"))}
        env.update(
            DAGSTER_HOME=str(home),
            PHI4_PROFILE="tiny",
            PHI4_STATE_DIR=str(self.root / "state"),
            # The tokenizer cache the other tests share (tests/conftest.py _SESSION_CACHE).
            PHI4_CACHE_DIR=os.environ.get("PHI4_TEST_CACHE", str(REPO / "data" / "cache")),
            DAGSTER_DISABLE_TELEMETRY="1",
        )
        return env

    def start(self) -> None:
        dagster = Path(sys.executable).parent / "dagster"
        cmd = [str(dagster), "dev", "-f", "definitions.py", "-h", "127.0.0.1", "-p", str(self.port)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return "\n--- dagster dev log (tail) ---\n" + self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {self.proc.returncode}{self.log_tail()}", pytrace=False)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(f"{self.base_url}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            payload = json.load(resp)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def wait_ready(self, timeout_s: float) -> None:
        def server_info():
            self._alive()
            with urllib.request.urlopen(f"{self.base_url}/server_info", timeout=5) as resp:
                return resp.status == 200

        def definitions_loaded():
            self._alive()
            return self.graphql("{ assetNodes { assetKey { path } } }")["assetNodes"]

        start = time.monotonic()
        wait_for(server_info, timeout_s, f"{self.base_url}/server_info", on_timeout=self.log_tail)
        wait_for(definitions_loaded, max(10.0, timeout_s - (time.monotonic() - start)),
                 "the code location's asset nodes", on_timeout=self.log_tail)

    def stop(self) -> None:
        """SIGTERM the whole process group (webserver, daemon, code servers, run workers), then SIGKILL
        whatever is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the leader's pid is the group id
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.5)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@contextmanager
def dagster_dev(root: Path, ready_timeout_s: float = 120.0) -> Iterator[DagsterDev]:
    server = DagsterDev(root)
    try:
        server.start()
        server.wait_ready(ready_timeout_s)
        yield server
    finally:
        server.stop()


@contextmanager
def chromium(root: Path) -> Iterator:
    """A Selenium session on headless Debian Chromium through Debian's chromedriver (the driver path is
    given, so Selenium Manager never runs and nothing is fetched)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={root / 'chromium-profile'}"]:
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(root / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
