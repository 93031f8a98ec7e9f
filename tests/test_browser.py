"""End to end, as a learner sees it: JupyterLab in a real (headless) Chromium runs lesson 1 and its explorer.

The test starts JupyterLab the way `make lab` does (from the repository root, the course's environment,
offline), opens lesson 1 in Chromium driven by Playwright, runs every cell with "Run All Cells", drags
the context slider of the "will it fit?" explorer and checks that the shown result changes. Screenshots
go to build/browser/ (ignored by git).

Chromium is Debian's `chromium` package (Playwright's own browser download is not used: it needs a
network the course does not assume). Without /usr/bin/chromium the test is skipped, saying why;
`.ci/run` installs it so that CI always runs this test.

The notebook opened is a copy of lesson 1 without its outputs, in build/browser/: JupyterLab autosaves
what it shows, and the committed notebook must not change.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
LESSON = ROOT / "course" / "01_what_is_an_slm.ipynb"
BUILD = ROOT / "build" / "browser"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_ALL_TIMEOUT_S = 420

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium) "
                "to run the real-browser test", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

# JupyterLab settings of this test's private config folder: render every cell (no virtual scrolling,
# so all prompts can be read), no news or update pop-ups over the page.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it; yields (base address, server pid); stops it and its kernels after."""
    home = tmp_path_factory.mktemp("jupyter")
    for name, text in SETTINGS.items():
        path = home / "config" / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    port = _free_port()
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(
        [str(venv_bin / "jupyter"), "lab", "--no-browser", "--allow-root", "--IdentityProvider.token=",
         f"--port={port}", "--ServerApp.ip=127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (home / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, server.pid
    finally:
        server.send_signal(signal.SIGINT)  # Jupyter stops its kernels on SIGINT (twice: no confirmation)
        time.sleep(0.5)
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(server.pid, signal.SIGKILL)  # the server's own process group: its kernels, nothing else
        except ProcessLookupError:
            pass
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    base, _ = lab
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def _copy_without_outputs(source: Path, target: Path) -> Path:
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def _prompts(page) -> list[str]:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


def _run_all(page, timeout_s: float) -> float:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        prompts = _prompts(page)
        if page.get_by_text("Traceback (most recent call last)").count():
            break
        if prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts):
            return time.monotonic() - start
        page.wait_for_timeout(1000)
    page.screenshot(path=str(BUILD / "failed_run_all.png"), full_page=True)
    tracebacks = page.locator(".jp-OutputArea-output", has_text="Traceback").all_inner_texts()
    pytest.fail(f"Run All did not finish cleanly; prompts {_prompts(page)}; errors: {tracebacks[:1]}")


def test_lesson_1_runs_in_chromium_and_its_explorer_responds(lab, page):
    if not LESSON.exists():
        pytest.skip(f"{LESSON.relative_to(ROOT)} does not exist yet")
    base, server_pid = lab
    copy = _copy_without_outputs(LESSON, BUILD / LESSON.name)
    page.goto(f"{base}/lab/tree/{copy.relative_to(ROOT).as_posix()}")
    page.locator(".jp-NotebookPanel .jp-Notebook").wait_for(timeout=60_000)
    # the kernel must be up before "Run All" (else JupyterLab asks which kernel to start): the status bar
    # says "Python 3 (slmcourse) | Idle" once it is
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$")).wait_for(timeout=120_000)

    seconds = _run_all(page, RUN_ALL_TIMEOUT_S)
    server = psutil.Process(server_pid)
    kernels = server.children(recursive=True)
    print(f"lesson 1 ran in the browser in {seconds:.0f} s; Jupyter server ~{server.memory_info().rss / 2**20:.0f} MiB, "
          f"kernel ~{sum(k.memory_info().rss for k in kernels) / 2**20:.0f} MiB resident")

    _check_fit_explorer(page)


def _slider(page, label: str):
    return page.locator(".widget-slider", has=page.locator(".widget-label", has_text=label))


def _drag(page, slider, fraction: float) -> None:
    """Drag a slider's handle with the mouse to `fraction` of its track, as a learner would."""
    handle = slider.locator(".noUi-handle").bounding_box()
    track = slider.locator(".noUi-target").bounding_box()
    y = handle["y"] + handle["height"] / 2
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] * fraction, y, steps=12)
    page.mouse.up()


def _wait_for_change(page, locator, before: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while (text := locator.inner_text()) == before and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_timeout(1000)  # the plot is redrawn just after the text: let it land before a screenshot
    return text


def _readout(slider) -> int:
    return int(slider.locator(".widget-readout").inner_text().replace(",", ""))


def _check_fit_explorer(page) -> None:
    """Drag the explorer's sliders; the shown result must follow, and nonsense must get a clear message."""
    context, batch = _slider(page, "Context (tokens)"), _slider(page, "Batch")
    explorer = page.locator(".widget-vbox", has=context).last
    explorer.scroll_into_view_if_needed()
    result = explorer.locator(".widget-html-content")
    before = result.inner_text()
    tokens, batch_before = _readout(context), _readout(batch)
    assert before.startswith(("Fits", "Does not fit")), before
    assert f"{tokens} tokens x batch {batch_before}:" in before, before
    explorer.screenshot(path=str(BUILD / "fit_explorer_before.png"))

    _drag(page, batch, 0.5)  # batch -> about 32 (of 64): more KV cache and activations to hold
    after = _wait_for_change(page, result, before)
    explorer.screenshot(path=str(BUILD / "fit_explorer_batch.png"))
    page.screenshot(path=str(BUILD / "01_what_is_an_slm.png"))
    assert after != before, "dragging the batch slider did not change the explorer's result"
    batch_after = _readout(batch)
    assert batch_after > batch_before and f"{tokens} tokens x batch {batch_after}:" in after, (batch_after, after)
    needed = [float(re.search(r"([\d.]+) GiB needed", text).group(1)) for text in (before, after)]
    assert needed[1] > needed[0], needed

    _drag(page, context, 0.95)  # ~124k tokens: beyond most models' context, which must get a clear message
    last = _wait_for_change(page, result, after)
    explorer.screenshot(path=str(BUILD / "fit_explorer_context.png"))
    assert last != after, "dragging the context slider did not change the explorer's result"
    assert "Traceback" not in explorer.inner_text()
    if last.startswith("Cannot compute this:"):
        assert "context" in last, last
    else:
        assert f"{_readout(context)} tokens x batch {batch_after}:" in last, last
