"""The notebooks in a real JupyterLab, driven by a headless Chromium through Playwright.

papermill and nbval never render a widget, so neither sees "Error displaying widget: model not
found", a lab extension that does not match the kernel's ipywidgets, or a slider whose callback
fails. These fixtures start the project's own JupyterLab on a free localhost port with a token,
in a temporary folder of notebook copies with their quick-mode parameters injected (and
``interactive = True``, so the ablation widgets are live), and open it in the system's Chromium.

The browser is Debian's ``chromium`` package (``/usr/bin/chromium``, or ``$STYLECORE_CHROMIUM``):
Playwright's own browser download needs the internet, so it is never used. Without Playwright
or a Chromium the tests skip with one line, except under ``CI=true``, where that is a failure.

The kernel runs like the notebook tests' papermill runs: offline (``STYLECORE_OFFLINE=1``, an
empty torch hub folder, no weights overrides, so random weights), with ``STYLECORE_DATA_DIR``
passed on and an empty stylecore cache. Artefacts (screenshots, the executed notebook, the
server and console logs) go to ``$STYLECORE_BROWSER_OUT/<notebook>`` (default ``build/browser``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "tests" / "notebooks" / "params"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Flags for a headless Chromium in a container with no network and no GPU.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
# JupyterLab user settings for the run: every cell stays in the page (no windowing), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def widget_notebooks(notebooks: Path = NOTEBOOKS, params: Path = PARAMS) -> list[str]:
    """Stems of the notebooks that have quick-mode parameters and build widgets (ipywidgets, or an ablation view)."""
    stems = []
    for path in sorted(notebooks.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        if (params / f"{path.stem}.json").exists() and ("ipywidgets" in code or "ablation_view(" in code):
            stems.append(path.stem)
    return stems


def chromium_executable() -> Path | None:
    path = os.environ.get("STYLECORE_CHROMIUM") or shutil.which("chromium") or DEFAULT_CHROMIUM
    return Path(path) if Path(path).is_file() and os.access(path, os.X_OK) else None


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (bash scripts/setup.sh installs the dev dependencies)"
    if chromium_executable() is None:
        how = "as root: apt-get install -y chromium" if os.geteuid() == 0 else "needs root: apt-get install -y chromium"
        return f"no Chromium at {DEFAULT_CHROMIUM} or $STYLECORE_CHROMIUM ({how}, or STYLECORE_INSTALL_BROWSER=1 bash scripts/test.sh)"
    return None


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (the system's, with a fresh empty profile), or a skip / CI failure."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run under CI=true: {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(chromium_executable()), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT
    token: str
    root: Path  # the server's root folder: the prepared notebook copies
    log: Path

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def close_sessions(self) -> None:
        """Shut down every notebook's kernel (the next notebook gets the machine to itself)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def open_url(self, stem: str) -> str:
        return f"{self.url}/lab/tree/{stem}.ipynb?token={self.token}&reset"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(stems: list[str], folder: Path) -> None:
    """Copies of the notebooks with quick-mode parameters injected, live widgets on, outputs in ``folder``."""
    import papermill as pm

    for stem in stems:
        params = json.loads((PARAMS / f"{stem}.json").read_text()) | {
            "interactive": True, "output_dir": str(folder / "outputs" / stem)}
        pm.execute_notebook(str(NOTEBOOKS / f"{stem}.ipynb"), str(folder / f"{stem}.ipynb"), parameters=params,
                            prepare_only=True, kernel_name="python3", progress_bar=False)


def _server_env(work: Path) -> dict[str, str]:
    """The offline environment of the notebook tests, isolated from the user's Jupyter and caches."""
    env = dict(os.environ)
    for var in ("STYLECORE_WEIGHTS", "STYLECORE_VGG19_WEIGHTS", "STYLECORE_CLIP_WEIGHTS", "STYLECORE_MANIFEST",
                "MPLBACKEND", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
        env.pop(var, None)  # MPLBACKEND=Agg would turn display(fig) into text in a live kernel
    shared = ROOT.parent / "shared" / "data"
    if not env.get("STYLECORE_DATA_DIR") and shared.is_dir():
        env["STYLECORE_DATA_DIR"] = str(shared)
    for name in ("torch-home", "cache", "jupyter-config", "jupyter-data", "jupyter-runtime", "workspaces", "ipython"):
        (work / name).mkdir(parents=True, exist_ok=True)
    settings = work / "lab-settings"
    for rel, value in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    env.update(
        STYLECORE_OFFLINE="1", TORCH_HOME=str(work / "torch-home"), STYLECORE_CACHE=str(work / "cache"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])), PYTHONUNBUFFERED="1",
        JUPYTER_CONFIG_DIR=str(work / "jupyter-config"), JUPYTER_DATA_DIR=str(work / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(work / "jupyter-runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"), IPYTHONDIR=str(work / "ipython"),
        TQDM_MININTERVAL=env.get("TQDM_MININTERVAL", "30"),
    )
    return env


@pytest.fixture(scope="session")
def lab(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The project's JupyterLab on a free localhost port, serving prepared copies of the widget notebooks."""
    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    root.mkdir()
    _prepare(widget_notebooks(), root)
    port, token = _free_port(), secrets.token_hex(24)
    log = work / "jupyter-server.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=_server_env(work), cwd=root, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                server.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer on port {port} in 120 s:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def artefacts(request: pytest.FixtureRequest) -> Path:
    """This test's output folder for screenshots and logs (kept after the run)."""
    base = Path(os.environ.get("STYLECORE_BROWSER_OUT") or ROOT / "build" / "browser")
    name = request.node.callspec.params.get("stem", request.node.name) if hasattr(request.node, "callspec") else request.node.name
    folder = base / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
