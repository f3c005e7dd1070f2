"""The leaderboard site in a real browser: headless Debian Chromium, from file:// and over HTTP.

The browser is driven through the Chrome DevTools Protocol over a pipe
(``--remote-debugging-pipe``: NUL-separated JSON on file descriptors 3 and 4), written
here with the standard library, so the only thing to install is Chromium itself
(``scripts/install_browser.sh``). Clicks are real mouse events at the element's centre.

A screenshot of the index is saved under ``$ZCBENCH_ARTIFACTS`` (else the test's tmp
folder); its path is printed.
"""
from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from zcbench import fetch, leaderboard, report
from zcbench.runner import RunConfig, run

CHROMIUM = os.environ.get("ZCBENCH_CHROMIUM") or shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (run scripts/install_browser.sh, or set ZCBENCH_CHROMIUM)")


class CDPError(RuntimeError):
    pass


class Browser:
    """Minimal DevTools-protocol client over --remote-debugging-pipe."""

    def __init__(self, binary: str):
        self.profile = tempfile.mkdtemp(prefix="zcbench-chromium-")
        to_chrome_r, self._to_chrome_w = os.pipe()
        self._from_chrome_r, from_chrome_w = os.pipe()

        def child_fds():
            # Chromium reads commands on fd 3 and writes replies on fd 4. Move both ends above
            # 4 first so that one dup2 cannot clobber the other.
            hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(hi_r, 3)  # dup2 makes 3 and 4 inheritable; the originals close on exec
            os.dup2(hi_w, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars", f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe", "about:blank"]
        # close_fds=False: pass_fds would insist that 3 and 4 exist in this process already.
        self.proc = subprocess.Popen(args, preexec_fn=child_fds, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.time()
            if left <= 0:
                raise CDPError("timed out waiting for the browser")
            ready, _, _ = select.select([self._from_chrome_r], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome_r, 1 << 16)
                if not chunk:
                    raise CDPError(f"the browser closed the pipe (exit code {self.proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise CDPError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def new_page(self, width=1280, height=900) -> "Page":
        tid = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        page = Page(self, sid)
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.cmd(f"{domain}.enable")
        page.cmd("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        for fd in (self._to_chrome_w, self._from_chrome_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str):
        self.b, self.sid = browser, session

    def cmd(self, method, params=None, timeout=60):
        return self.b.send(method, params, self.sid, timeout)

    def js(self, expr: str):
        r = self.cmd("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CDPError(f"JS error in {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr: str, timeout: float = 30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.js(expr):
                    return
            except CDPError:
                pass  # page in the middle of navigating
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expr}")

    def goto(self, url: str):
        self.cmd("Page.navigate", {"url": url})
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete' "
                      "&& document.documentElement.getAttribute('data-zcb-ready') === '1'")

    def click(self, selector: str):
        """A real mouse click at the centre of the element matched by ``selector``."""
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        assert box, f"no element {selector}"
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.cmd("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                  "clickCount": 0 if kind == "mouseMoved" else 1})

    def screenshot(self, path: Path):
        data = self.cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def site(tmp_path_factory, data_dir):
    """The runner on gpt2 (params, params_nonembedding; 2 seeds; 30 archs) -> report -> site."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lb")
    results = root / "results"
    for seed in (0, 1):
        run(RunConfig(space="gpt2", proxies=["params", "params_nonembedding"], seed=seed, n_archs=30,
                      data_dir=str(data_dir), results_dir=str(results), bootstrap=0, progress=False))
    rc = leaderboard.main_leaderboard(["--results-dir", str(results), "--out", str(root / "site"),
                                       "--data-dir", str(data_dir), "--bootstrap", "100"])
    assert rc == 0
    data = report.build(results, data_dir=str(data_dir), n_resamples=0)
    return root / "site", data


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    try:
        yield b
    finally:
        b.close()


def _artifacts(tmp_path: Path) -> Path:
    d = Path(os.environ.get("ZCBENCH_ARTIFACTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def _rows(page: Page, table_sel: str) -> list[dict]:
    return page.js(f"""Array.from(document.querySelectorAll({json.dumps(table_sel + ' tbody tr')})).map(r => ({{
        proxy: r.getAttribute('data-proxy'), baseline: r.classList.contains('baseline'),
        bg: getComputedStyle(r.cells[1]).backgroundColor,
        values: Array.from(r.cells).map(c => c.getAttribute('data-value'))}}))""")


# --------------------------------------------------------------------------- tests
def test_index_tables_sorting_and_proxy_page(site, browser, tmp_path):
    out, data = site
    page = browser.new_page()
    index = (out / "index.html").resolve().as_uri()
    page.goto(index)

    # one table per space with one row per proxy; the baseline row is highlighted
    spaces = list(dict.fromkeys(data.table["space"]))
    assert page.js("Array.from(document.querySelectorAll('table.zcb-sortable')).map(t => t.id)") == \
        [f"table-{s}" for s in spaces]
    for sp in spaces:
        rows = _rows(page, f"#table-{sp}")
        expected = data.table[data.table["space"] == sp]
        assert len(rows) == len(expected) == 2
        assert [r["proxy"] for r in rows] == list(expected["proxy"])  # ranked by rho
        base = [r for r in rows if r["baseline"]]
        assert [r["proxy"] for r in base] == ["params"]
        assert base[0]["bg"] not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
        assert {r["bg"] for r in rows if not r["baseline"]} == {"rgba(0, 0, 0, 0)"}

    # the figures are there and decoded
    page.wait_for("Array.from(document.images).every(i => i.complete)")
    assert page.js("Array.from(document.images).map(i => i.naturalWidth > 100)") == [True] * len(spaces)

    shot = _artifacts(tmp_path) / "leaderboard-index.png"
    page.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"\nscreenshot of the leaderboard index: {shot}")

    # clicking a header sorts by that column, best first, then reverses
    t = "#table-gpt2"
    rho_col = page.js(f"Array.from(document.querySelectorAll('{t} thead th')).findIndex(th => "
                      "th.textContent.startsWith('ρ mean'))")
    sec_col = page.js(f"Array.from(document.querySelectorAll('{t} thead th')).findIndex(th => "
                      "th.textContent.startsWith('s/arch'))")
    proxy_col = 1

    def column(col):
        return [r["values"][col] for r in _rows(page, t)]

    def aria(col):
        return page.js(f"document.querySelectorAll('{t} thead th')[{col}].getAttribute('aria-sort')")

    rho = data.table[data.table["space"] == "gpt2"].set_index("proxy")["rho"]
    page.click(f"{t} thead th:nth-child({sec_col + 1}) button")
    vals = [float(v) for v in column(sec_col)]
    assert aria(sec_col) == "ascending" and vals == sorted(vals)
    page.click(f"{t} thead th:nth-child({rho_col + 1}) button")
    assert aria(rho_col) == "descending" and aria(sec_col) == "none"
    assert [r["proxy"] for r in _rows(page, t)] == list(rho.sort_values(ascending=False).index)
    page.click(f"{t} thead th:nth-child({rho_col + 1}) button")
    assert aria(rho_col) == "ascending"
    assert [r["proxy"] for r in _rows(page, t)] == list(rho.sort_values(ascending=True).index)
    page.click(f"{t} thead th:nth-child({proxy_col + 1}) button")
    assert aria(proxy_col) == "ascending"
    assert [r["proxy"] for r in _rows(page, t)] == sorted(rho.index)

    # follow a proxy link: the proxy page loads with its numbers, definition and figure
    page.click(f"{t} tr[data-proxy='params_nonembedding'] td.proxy a")
    target = (out / "proxies" / "params_nonembedding.html").resolve().as_uri()
    page.wait_for(f"location.href === {json.dumps(target)} && document.readyState === 'complete'")
    assert page.js("document.querySelector('h1').textContent") == "params_nonembedding"
    body = page.js("document.body.innerText")
    r = data.table[(data.table["proxy"] == "params_nonembedding")].iloc[0]
    assert f"{r['rho']:.3f} ± {r['rho_std']:.3f}" in body
    assert "Javaheripi" in body  # the citation from the proxy class
    assert "run key" in body.lower() and "seed0-" in body
    page.wait_for("Array.from(document.images).every(i => i.complete)")
    assert page.js("document.images.length >= 1 && Array.from(document.images).every(i => i.naturalWidth > 100)")

    # the space page shows the pinned ground-truth sha256 from the manifest
    page.click("table#proxy-spaces tbody tr td a")
    target = (out / "spaces" / "gpt2.html").resolve().as_uri()
    page.wait_for(f"location.href === {json.dumps(target)} && document.readyState === 'complete'")
    sha = next(f["sha256"] for f in fetch.table_info("gpt2")["files"] if f["path"].endswith("ppl_summary.yaml"))
    assert sha in page.js("document.body.innerText")

    # nothing failed and nothing left the local folder
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors
    urls = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert urls and all(u.startswith(("file://", "data:")) for u in urls), [u for u in urls if "file://" not in u]


def test_site_served_over_http(site, browser):
    out, data = site
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        page = browser.new_page()
        page.goto(base + "index.html")
        assert len(_rows(page, "#table-gpt2")) == 2
        page.goto(base + "reproduction.html")
        text = page.js("document.body.innerText")
        assert "#Params" in text and "0.582" in text
        page.goto(base + "proxies/params.html")
        assert page.js("document.querySelector('h1').textContent") == "params"
    finally:
        server.shutdown()
        server.server_close()


def test_site_refuses_foreign_folder_and_rebuilds_own(site, tmp_path, data_dir):
    out, data = site
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(leaderboard.SiteError, match="not written by zcbench"):
        leaderboard.build_site(data, foreign, figures=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
    again = tmp_path / "again"
    leaderboard.build_site(data, again, figures=False)
    (again / "stale.html").write_text("old")
    leaderboard.build_site(data, again, figures=False)
    assert not (again / "stale.html").exists() and (again / "index.html").exists()
    html_text = (again / "index.html").read_text()
    assert "http://" not in html_text and "https://" not in html_text and "fetch(" not in html_text
    assert "fetch(" not in (again / "assets" / "sort.js").read_text()
