"""The leaderboard site in a real browser: headless Debian Chromium, from file:// and over HTTP.

The browser is driven through the Chrome DevTools Protocol over a pipe
(``--remote-debugging-pipe``: NUL-separated JSON on file descriptors 3 and 4), written
here with the standard library, so the only thing to install is Chromium itself
(``scripts/install_browser.sh``). Clicks are real mouse events at the element's centre.

Screenshots of the index at 1400 px and 390 px are saved under ``$ZCBENCH_ARTIFACTS`` (else
the test's tmp folder); their paths are printed. What is checked (issue #20): the overview matrix
is the first thing on the index with every (proxy, space) cell present or explained; filtering by
name and family; every link and image resolves; nothing overflows the viewport at 1400 px and
390 px; no internal hash outside provenance sections; the submission page exists; sorting; the
reproduction page shows the published value next to ours.
"""
from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import yaml

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

    def new_page(self, width=1280, height=900, mobile: bool = False) -> "Page":
        tid = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        page = Page(self, sid)
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.cmd(f"{domain}.enable")
        page.cmd("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
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
    """The runner on gpt2 (params, params_nonembedding; 2 seeds; 30 archs) and on autoformer, which has
    no ground truth (params; 4 sampled archs) -> report -> site."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lb")
    results = root / "results"
    for seed in (0, 1):
        run(RunConfig(space="gpt2", proxies=["params", "params_nonembedding"], seed=seed, n_archs=30,
                      data_dir=str(data_dir), results_dir=str(results), bootstrap=0, progress=False))
    run(RunConfig(space="autoformer", proxies=["params"], seed=0, n_archs=4, data_dir=str(data_dir),
                  results_dir=str(results), bootstrap=0, progress=False))
    # the site is built by the very command the publishing workflow runs (.github/workflows/pages.yml)
    argv = workflow_build_command()
    assert argv[:4] == ["python", "-m", "zcbench", "leaderboard"] and "--results-dir" in argv
    out = root / argv[argv.index("--out") + 1]
    env = {**os.environ, "ZCBENCH_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable] + argv[1:], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wrote the leaderboard site" in proc.stdout
    data = report.build(results, data_dir=str(data_dir), n_resamples=0)
    return out, data


def workflow_build_command() -> list[str]:
    """The "Build the site" step of the Pages workflow, as an argv (after activating the venv)."""
    wf = yaml.safe_load((Path(__file__).resolve().parents[1] / ".github" / "workflows" / "pages.yml").read_text())
    steps = [s for job in wf["jobs"].values() for s in job.get("steps", [])]
    cmd = next(s["run"] for s in steps if s.get("name") == "Build the site")
    cmd = cmd.split("&&")[-1].strip()
    return shlex.split(cmd)


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
        family: r.getAttribute('data-family'), hidden: r.hidden,
        bg: getComputedStyle(r.cells[1]).backgroundColor,
        values: Array.from(r.cells).map(c => c.getAttribute('data-value'))}}))""")


def _pages(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


# an internal key: a hex run of 7+ characters with both a digit and a letter (commits, sha256, config
# hashes), or a configuration id such as v1-fa5560
HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,}\b|\bv\d+-[0-9a-f]{6}\b")

VISIBLE_TEXT_JS = """(() => { const b = document.body.cloneNode(true);
    b.querySelectorAll('.provenance, script, style').forEach(e => e.remove());
    const titles = Array.from(b.querySelectorAll('[title]')).map(e => e.getAttribute('title'));
    return b.textContent + '\\n' + titles.join('\\n'); })()"""

OVERFLOW_JS = """(() => { const W = document.documentElement.clientWidth; const bad = [];
    const scrolls = e => { for (let p = e.parentElement; p; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return p; }
        return null; };
    for (const e of document.querySelectorAll('body *')) {
        const r = e.getBoundingClientRect(); if (!r.width || !r.height) continue;
        if (r.right > W + 1 && !scrolls(e)) bad.push(e.tagName + (e.id ? '#' + e.id : '') + ' ' +
            (e.className || '') + ' right=' + Math.round(r.right));
    }
    const wraps = Array.from(document.querySelectorAll('.table-wrap')).filter(w => w.offsetParent !== null &&
        w.scrollWidth > w.clientWidth + 1).map(w => (w.querySelector('table') || {}).id || '?');
    return {W: W, docScroll: document.documentElement.scrollWidth, bad: bad.slice(0, 10), scrolling: wraps}; })()"""


# --------------------------------------------------------------------------- tests
def test_index_opens_with_the_overview_matrix(site, browser, tmp_path):
    out, data = site
    truth_spaces = [s for s in dict.fromkeys(data.table["space"]) if data.spaces[s].truth is not None]
    assert truth_spaces == ["gpt2"] and "autoformer" in set(data.table["space"])
    for width, mobile in ((1400, False), (390, True)):
        page = browser.new_page(width=width, height=900, mobile=mobile)
        page.goto((out / "index.html").resolve().as_uri())
        # the matrix is the first table, and it starts above the fold
        first = page.js("(() => { const t = document.querySelector('main table'); return [t.id, "
                        "t.getBoundingClientRect().top]; })()")
        assert first[0] == "matrix" and first[1] < 600, first
        # one row per proxy, one cell per (proxy, space with ground truth): a number or an explanation
        cells = page.js("""Array.from(document.querySelectorAll('#matrix tbody tr')).map(r => ({proxy:
            r.getAttribute('data-proxy'), cells: Array.from(r.querySelectorAll('td.cell')).map(c => ({space:
            c.getAttribute('data-space'), text: c.textContent.trim(), value: c.getAttribute('data-value'),
            na: c.classList.contains('na'), title: c.getAttribute('title') || ''}))}))""")
        assert sorted(r["proxy"] for r in cells) == sorted(set(data.table["proxy"]))
        tab = data.table.set_index(["space", "proxy"])
        for r in cells:
            assert [c["space"] for c in r["cells"]] == truth_spaces
            for c in r["cells"]:
                if (c["space"], r["proxy"]) in tab.index:
                    rho = tab.loc[(c["space"], r["proxy"]), "rho"]
                    assert not c["na"] and c["text"].startswith(f"{rho:.2f}") and abs(float(c["value"]) - rho) < 1e-9
                    assert "95% CI" in c["title"]
                else:
                    assert c["na"] and c["text"] == "n/a" and c["title"], c
        # rows ordered by mean rank: with one space, the order of rho
        gpt2 = data.table[data.table["space"] == "gpt2"].sort_values("rho", ascending=False)
        assert [r["proxy"] for r in cells][:2] == list(gpt2["proxy"])
        # the space without ground truth says why instead of showing a table of dashes
        text = page.js("document.querySelector('#no-ground-truth').innerText")
        assert "AutoFormer" in text and "nothing to correlate" in text
        page.wait_for("Array.from(document.images).every(i => i.complete)")
        assert page.js("Array.from(document.images).every(i => i.naturalWidth > 100)")
        shot = _artifacts(tmp_path) / f"leaderboard-index-{width}.png"
        page.cmd("Page.captureScreenshot", {"format": "png"})  # settle layout
        data_png = page.cmd("Page.captureScreenshot", {"format": "png"})["data"]
        shot.write_bytes(base64.b64decode(data_png))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        print(f"\nscreenshot of the leaderboard index at {width} px: {shot}")


def test_filter_by_name_and_family(site, browser):
    out, data = site
    page = browser.new_page(width=1400)
    page.goto((out / "index.html").resolve().as_uri())
    rows = _rows(page, "#matrix")
    assert {r["family"] for r in rows} == {"data-free"}  # params, params_nonembedding
    assert all(r["family"] == leaderboard.proxy_family(r["proxy"]) for r in rows)
    page.click("#proxy-filter")
    page.cmd("Input.insertText", {"text": "nonemb"})
    page.wait_for("document.querySelectorAll('#matrix tbody tr:not([hidden])').length === 1")
    assert [r["proxy"] for r in _rows(page, "#matrix") if not r["hidden"]] == ["params_nonembedding"]
    assert page.js("document.getElementById('filter-count').textContent") == "1 of 2 proxies"
    assert "q=nonemb" in page.js("location.hash")  # the filtered view has its own URL
    page.js("(() => { const b = document.getElementById('proxy-filter'); b.value = ''; "
            "b.dispatchEvent(new Event('input')); })()")
    page.click("button.chip[data-family='gradient']")
    assert [r["proxy"] for r in _rows(page, "#matrix") if not r["hidden"]] == []
    assert page.js("document.getElementById('filter-count').textContent") == "0 of 2 proxies"
    page.click("button.chip[data-family='data-free']")  # gradient OR data-free
    assert len([r for r in _rows(page, "#matrix") if not r["hidden"]]) == 2
    page.click("button.chip[data-family='gradient']")
    page.click("button.chip[data-family='data-free']")
    assert page.js("document.querySelectorAll('#matrix tbody tr[hidden]').length") == 0
    # the same filter works on a space page's full table
    page.goto((out / "spaces" / "gpt2.html").resolve().as_uri())
    page.click("#proxy-filter")
    page.cmd("Input.insertText", {"text": "params_non"})
    page.wait_for("document.querySelectorAll('#table-gpt2 tbody tr:not([hidden])').length === 1")


def test_every_link_resolves(site):
    out, _ = site
    pages = _pages(out)
    names = {p.relative_to(out).as_posix() for p in pages}
    assert {"index.html", "metrics.html", "reproduction.html", "submit.html", "spaces/gpt2.html",
            "spaces/autoformer.html", "proxies/params.html"} <= names
    ids = {p: set(re.findall(r'\bid="([^"]+)"', p.read_text())) for p in pages}
    n = 0
    for p in pages:
        for ref in re.findall(r'(?:href|src)="([^"]+)"', p.read_text()):
            if ref.startswith(("data:", "#")) and not ref.startswith("#q="):
                if ref.startswith("#"):
                    assert ref[1:] in ids[p], f"{p}: dangling anchor {ref}"
                continue
            assert not ref.startswith(("http:", "https:", "//")), f"{p}: external reference {ref}"
            target, _, anchor = ref.partition("#")
            dest = (p.parent / target).resolve()
            assert dest.is_file(), f"{p.relative_to(out)}: broken link {ref}"
            if anchor and dest.suffix == ".html":
                assert anchor in ids[dest], f"{p.relative_to(out)}: {ref} has no #{anchor}"
            n += 1
    assert n > 50


def test_no_overflow_and_no_internal_hashes(site, browser):
    out, _ = site
    pages = _pages(out)
    for width, mobile in ((1400, False), (390, True)):
        page = browser.new_page(width=width, height=900, mobile=mobile)
        for p in pages:
            rel = p.relative_to(out).as_posix()
            page.goto(p.resolve().as_uri())
            r = page.js(OVERFLOW_JS)
            assert r["docScroll"] <= r["W"] and not r["bad"], (rel, width, r)
            if width == 1400:  # wide enough for every table: none scrolls sideways
                assert not r["scrolling"], (rel, r["scrolling"])
            elif rel == "index.html":
                assert "matrix" not in r["scrolling"], r  # the overview fits a phone
            if width == 1400:
                hashes = HASH.findall(page.js(VISIBLE_TEXT_JS))
                assert not hashes, (rel, hashes[:5])
    # and the provenance sections do carry them (nothing was dropped, only moved)
    proxy = (out / "proxies" / "params.html").read_text()
    assert re.search(r'class="provenance"[\s\S]*seed0-[0-9a-f]{10}', proxy)


def test_submission_page_and_navigation(site, browser):
    out, _ = site
    page = browser.new_page(width=1400)
    page.goto((out / "index.html").resolve().as_uri())
    page.click("header nav.main a[href='submit.html']")
    target = (out / "submit.html").resolve().as_uri()
    page.wait_for(f"location.href === {json.dumps(target)} && document.readyState === 'complete'")
    assert page.js("document.querySelector('h1').textContent") == "Add your proxy"
    text = page.js("document.body.innerText")
    assert "python -m zcbench submit proxy=" in text and "verified" in text
    assert page.js("document.querySelectorAll('section[id^=step-]').length") == 4
    page.goto((out / "metrics.html").resolve().as_uri())
    for col in ("rho", "d_rho", "cost", "beats"):
        assert page.js(f"!!document.getElementById('m-{col}')")


def test_space_table_sorting_and_proxy_page(site, browser):
    out, data = site
    page = browser.new_page(width=1400)
    page.goto((out / "spaces" / "gpt2.html").resolve().as_uri())
    t = "#table-gpt2"
    rows = _rows(page, t)
    expected = data.table[data.table["space"] == "gpt2"]
    assert [r["proxy"] for r in rows] == list(expected["proxy"])  # ranked by rho
    base = [r for r in rows if r["baseline"]]
    assert [r["proxy"] for r in base] == ["params"]
    assert base[0]["bg"] not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")

    def col(label):
        return page.js(f"Array.from(document.querySelectorAll('{t} thead th')).findIndex(th => "
                       f"th.textContent.startsWith({json.dumps(label)}))")

    rho_col, cost_col, proxy_col = col("ρ mean"), col("Cost/arch"), 1
    assert page.js(f"document.querySelectorAll('{t} thead th')[{rho_col}].title").startswith("Spearman")

    def aria(c):
        return page.js(f"document.querySelectorAll('{t} thead th')[{c}].getAttribute('aria-sort')")

    rho = expected.set_index("proxy")["rho"]
    page.click(f"{t} thead th:nth-child({cost_col + 1}) button")
    vals = [float(r["values"][cost_col]) for r in _rows(page, t)]
    assert aria(cost_col) == "ascending" and vals == sorted(vals)
    page.click(f"{t} thead th:nth-child({rho_col + 1}) button")
    assert aria(rho_col) == "descending" and aria(cost_col) == "none"
    assert [r["proxy"] for r in _rows(page, t)] == list(rho.sort_values(ascending=False).index)
    page.click(f"{t} thead th:nth-child({rho_col + 1}) button")
    assert [r["proxy"] for r in _rows(page, t)] == list(rho.sort_values(ascending=True).index)
    page.click(f"{t} thead th:nth-child({proxy_col + 1}) button")
    assert [r["proxy"] for r in _rows(page, t)] == sorted(rho.index)
    # the space page shows the pinned ground-truth sha256 (in its provenance section)
    sha = next(f["sha256"] for f in fetch.table_info("gpt2")["files"] if f["path"].endswith("ppl_summary.yaml"))
    assert sha in page.js("Array.from(document.querySelectorAll('.provenance')).map(e => e.innerText).join()")

    page.click(f"{t} tr[data-proxy='params_nonembedding'] td.proxy a")
    target = (out / "proxies" / "params_nonembedding.html").resolve().as_uri()
    page.wait_for(f"location.href === {json.dumps(target)} && document.readyState === 'complete'")
    assert page.js("document.querySelector('h1').textContent") == "params_nonembedding"
    body = page.js("document.body.innerText")
    r = data.table[(data.table["proxy"] == "params_nonembedding")].iloc[0]
    assert f"{r['rho']:.3f} ± {r['rho_std']:.3f}" in body
    assert "Javaheripi" in body  # the citation from the proxy class
    page.wait_for("Array.from(document.images).every(i => i.complete)")
    assert page.js("document.images.length >= 1 && Array.from(document.images).every(i => i.naturalWidth > 100)")

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
        assert len(_rows(page, "#matrix")) == 2
        page.goto(base + "reproduction.html")
        # LPZero Table 4's #Params row: the paper's tau (read from published.yaml here) next to ours
        # (from report.build, independent of the page); a wrong number in either cell fails.
        pub = yaml.safe_load(Path(report.PUBLISHED).read_text())
        src = next(s for s in pub["sources"] if s["id"] == "lpzero_gpt2")
        paper_tau = next(e["tau"] for e in src["entries"] if e["name"] == "#Params")
        ours = data.table[(data.table["space"] == "gpt2") & (data.table["proxy"] == "params")].iloc[0]
        row = page.js("""(() => { const r = document.querySelector("#reproduction tr[data-source='lpzero_gpt2']"""
                      """[data-proxy='params']"); const h = Array.from(document.querySelectorAll('#reproduction """
                      """thead th')).map(t => t.textContent.trim()); const c = Array.from(r.cells).map(x => """
                      """x.textContent.trim()); return Object.fromEntries(h.map((k, i) => [k, c[i]])); })()""")
        assert row["Paper name"] == "#Params"
        assert row["τ paper"] == f"{paper_tau:.3f}"
        assert row["τ ours"].startswith(f"{ours['tau']:.3f}") and row["ρ ours"].startswith(f"{ours['rho']:.3f}")
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
    assert not (tmp_path / "again.building").exists()
    html_text = (again / "index.html").read_text()
    assert "http://" not in html_text and "https://" not in html_text and "fetch(" not in html_text
    for js in ("sort.js", "filter.js"):
        assert "fetch(" not in (again / "assets" / js).read_text()
