"""The HTML report in a real browser: headless Chromium, driven over the Chrome DevTools Protocol.

The protocol runs over `--remote-debugging-pipe` (file descriptors 3 and 4, NUL-separated JSON), so no websocket
package is needed. The page is opened from disk with the network switched off: every image must decode
(naturalWidth > 0), the console must stay free of errors, and the tables must hold the run's numbers. A screenshot
of each section is saved under the test's temporary folder (set FAKEBENCH_REPORT_SHOTS to keep them elsewhere).

Skipped when Chromium is not installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from report_fixture import make_run

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install "
                                                         "chromium); the browser checks of the report need it")


def _high(fd: int) -> int:
    """The same pipe end on a descriptor >= 10 (so it cannot collide with 3 and 4 in the child)."""
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """Headless Chromium with a DevTools session over a pipe: `call` sends a command and waits for its answer,
    keeping the events that arrive meanwhile in `events`."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000) -> None:
        to_chrome_r, self._to_chrome = (_high(fd) for fd in os.pipe())
        self._from_chrome, from_chrome_w = (_high(fd) for fd in os.pipe())
        args = [CHROMIUM, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
                "--disable-background-networking", "--disable-extensions", "--mute-audio",
                f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]

        def pipe_fds() -> None:  # chromium reads commands on fd 3 and writes answers on fd 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        # close_fds=False keeps fds 3 and 4 (made after the closing step would run); Python's own fds are
        # not inheritable, so nothing else leaks into the browser
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=pipe_fds)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read(self, timeout: float) -> dict:
        import select

        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, *, timeout: float = 30.0, session: bool = True) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read(timeout)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(max(0.1, deadline - time.monotonic())))

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1,
                                                       "uploadThroughput": -1})
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def screenshot(self, path: Path, clip: dict | None = None) -> Path:
        params = {"format": "png", "captureBeyondViewport": True}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", params, timeout=60)["data"]))
        return path

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, failed loads and any request that left the file system."""
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {p.get('args')}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                out.append(f"load failed: {p.get('errorText')}")
            elif method == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "about:")):
                    out.append(f"request to {url}")
        return out

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass


PAGE_FACTS = """(() => {
  const images = [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                                 height: i.naturalHeight, src: i.getAttribute('src').slice(0, 22)}));
  const tables = {};
  for (const t of document.querySelectorAll('table[data-table]')) {
    const key = t.dataset.run + '/' + t.dataset.table;
    tables[key] = {columns: [...t.tHead.rows[0].cells].map(c => c.textContent.trim()),
                   rows: [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))};
  }
  const sections = [...document.querySelectorAll('section[data-section]')].map(s => {
    const r = s.getBoundingClientRect();
    return {key: s.dataset.section, x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width,
            height: r.height};
  });
  const verdict = document.querySelector('[data-verdict]');
  return {images, tables, sections, scripts: document.scripts.length,
          verdict: verdict && {style: verdict.dataset.verdict, colour: getComputedStyle(verdict).backgroundColor,
                               size: parseFloat(getComputedStyle(verdict).fontSize)},
          width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight};
})()"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Two runs side by side (one synthetic with every table, one with most missing), rendered in Chromium."""
    from fakebench.report import write_report
    from fakebench.tables import read_table

    root = tmp_path_factory.mktemp("report-browser")
    a = make_run(root / "run-a")
    b = make_run(root / "run-b", tables={"metrics", "evaluation", "media"}, synthetic=False, seed=1)
    index = write_report([a, b], root / "report")
    shots = Path(os.environ.get("FAKEBENCH_REPORT_SHOTS") or root / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fakebench-chromium-") as profile:
        browser = Browser(Path(profile))
        try:
            browser.open(index.resolve().as_uri())
            facts = browser.evaluate(PAGE_FACTS)
            problems = browser.problems()
            browser.screenshot(shots / "page.png")
            for s in facts["sections"]:
                clip = {"x": s["x"], "y": s["y"], "width": max(1, s["width"]), "height": max(1, min(s["height"],
                                                                                                      4000))}
                browser.screenshot(shots / f"section-{s['key']}.png", clip)
        finally:
            browser.close()
    evaluation = {"run-a": read_table(a / "evaluation" / "evaluation.parquet")[0],
                  "run-b": read_table(b / "evaluation" / "evaluation.parquet")[0]}
    return facts, problems, shots, evaluation


def test_every_image_renders_and_nothing_errs_or_leaves_the_page(rendered):
    facts, problems, _, _ = rendered
    assert problems == []
    assert facts["scripts"] == 0
    assert len(facts["images"]) >= 8
    for image in facts["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["src"].startswith("data:image/png;base64")


def test_the_tables_hold_the_runs_numbers(rendered):
    facts, _, _, evaluation = rendered
    for run, rows in evaluation.items():
        table = facts["tables"][f"{run}/detectors"]
        shown = {(r[0], r[1]): r[2] for r in table["rows"]}
        clean = [r for r in rows if r["perturbation"] == "none" and r["detector"] != "shortcut"]
        assert len(shown) == len(clean)
        for r in clean:
            cell = shown[(r["detector"], r["generator"])]
            assert cell.startswith(f"{r['auc']:.2f}"), (cell, r)
            if r["auc_ci_low"] is not None:
                assert cell == f"{r['auc']:.2f} [{r['auc_ci_low']:.2f}, {r['auc_ci_high']:.2f}]"


def test_the_shortcut_verdict_is_big_and_red_and_sections_are_in_order(rendered):
    facts, _, shots, _ = rendered
    assert facts["verdict"]["style"] == "alarm"
    assert facts["verdict"]["colour"] == "rgb(179, 20, 27)"
    assert facts["verdict"]["size"] >= 20
    keys = [s["key"] for s in facts["sections"]]
    assert keys == ["run", "shortcut", "generators", "detectors", "cross", "robustness", "calibration",
                    "distributions", "frames", "worst"]
    assert facts["width"] <= 1400 + 1, "the page scrolls sideways"
    for key in keys:
        assert (shots / f"section-{key}.png").stat().st_size > 1000
