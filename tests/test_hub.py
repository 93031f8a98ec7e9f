"""A real classroom: JupyterHub on loopback, an instructor and two learners, nbgrader's exchange end to end.

What docs/jupyterhub.md tells an admin to do, done for real (the guide is written from this test, step for step):

1. the course's environment (this repository's .venv) runs every single-user server; the prepared model cache
   (~/.cache/slmcourse) is shared read-only; the hub loads docs/jupyterhub_config.py (memory limits, start page,
   environment, idle culler); JupyterHub with configurable-http-proxy (npm) listens on 127.0.0.1 only;
2. three local Unix accounts (created here, removed afterwards): an instructor and two learners, each with a
   copy of the repository in ~/small-language-models;
3. the hub-wide nbgrader settings (docs/nbgrader_exchange_config.py, pointing at a shared exchange folder)
   and the learners' nbgrader tools limited to the Assignments panel, in the site configuration folder every
   server finds through JUPYTER_CONFIG_PATH; the instructor turns the formgrader back on for their account;
4. each learner's server spawns and runs lesson 0's first cells through the Jupyter server API (kernels,
   websocket), preparing the models from the shared read-only cache; its memory is measured against the
   guide's limit;
5. the exchange: the instructor releases `attention_variants` (`grade.py exchange release`), each learner
   fetches it through their server's Assignments API, one fills in the solutions and one submits it blank,
   the instructor collects and autogrades in the sandbox (`grade.py exchange collect`), releases the feedback
   (`grade.py exchange feedback`), the learners fetch it; the grades are full marks and zero;
6. the formgrader page loads for the instructor through the hub in headless Chromium (Debian's chromium,
   never a browser download), opened on its own as nbgrader's docs advise for JupyterHub >= 4.1 (nbgrader
   #1870, #1947: JupyterHub forbids framing single-user pages, so the formgrader tab inside JupyterLab stays
   blank).

It needs root (to create the accounts and let the hub switch to them, as CI runs), JupyterHub (requirements.txt),
`configurable-http-proxy` (npm; `.ci/run` installs it) and bubblewrap; without one it is skipped, saying which.
Measured figures are printed (run with -s) and written to build/hub/measured.json.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DOCS = ROOT / "docs"
ASSIGNMENT = "attention_variants"
COURSE_ID = "slm-course"
INSTRUCTOR, LEARNERS = "slmhub-teacher", ("slmhub-ada", "slmhub-bob")
PASSWORD = secrets.token_urlsafe(12)
CHROMIUM = Path("/usr/bin/chromium")
BUILD = ROOT / "build" / "hub"
LESSON_0_CELLS = 5          # lesson 0's first code cells: Colab no-op, diagram, environment, device, prepare models
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".ipynb_checkpoints", "submitted",
                                     "autograded", "feedback", "gradebook.db", "nbgrader_exchange", "*.egg-info")


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the classroom test needs Linux"
    if os.geteuid() != 0:
        return ("the classroom test needs root: it creates three local accounts and lets JupyterHub switch to them "
                "(CI runs as root; run `sudo make test` to include it)")
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed in the course's environment (requirements.txt pins it: make setup)"
    if not shutil.which("configurable-http-proxy"):
        return "configurable-http-proxy is missing: `npm install -g configurable-http-proxy@4.6.3` (.ci/run does it)"
    if not shutil.which("useradd"):
        return "useradd is missing"
    sys.path.insert(0, str(ROOT / "utils"))
    import sandbox
    if problem := sandbox.sandbox_problem():
        return f"no grading sandbox: {problem}"
    return None


if reason := _why_not():
    pytest.skip(reason, allow_module_level=True)


def _learner_site_files() -> dict[str, str]:
    """The files of /srv/slmcourse/jupyter/learners/ exactly as docs/jupyterhub.md shows them."""
    import re
    guide = (DOCS / "jupyterhub.md").read_text()
    files = dict(re.findall(r"<!-- file: learners/(\S+) -->\n```json\n(.*?)```", guide, re.S))
    assert set(files) == {"jupyter_server_config.json", "labconfig/page_config.json"}, files
    return files


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# accounts, folders and permissions
# ------------------------------------------------------------------------------------------------

def _remove_user(name: str) -> None:
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for proc in psutil.process_iter(["uids"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real == uid:
                proc.kill()
        except psutil.Error:
            pass
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


def _add_user(name: str, home: Path) -> pwd.struct_passwd:
    _remove_user(name)  # a leftover of an interrupted run
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/bash", "--user-group", name],
                   check=True, capture_output=True)
    user = pwd.getpwnam(name)
    home.mkdir(parents=True)
    shutil.copytree(ROOT, home / "small-language-models", ignore=COPY_IGNORE, symlinks=True)
    subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(home)], check=True)
    home.chmod(0o700)
    return user


class Traversable:
    """Let every account reach a path (o+x on the folders above it, o+rX below it where asked); undo afterwards."""

    def __init__(self):
        self.changed: list[tuple[Path, int]] = []

    def reach(self, path: Path) -> None:
        for folder in reversed(path.resolve().parents):
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                self.changed.append((folder, stat.S_IMODE(mode)))
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    def undo(self) -> None:
        for folder, mode in reversed(self.changed):
            folder.chmod(mode)


def _as_user(user: pwd.struct_passwd, args: list[str], env: dict, cwd: Path, timeout: float = 600):
    """Run a command as one of the accounts, as they would in a terminal on the hub."""
    env = {**env, "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
    return subprocess.run(args, cwd=cwd, env=env, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------------
# the classroom
# ------------------------------------------------------------------------------------------------

class Hub:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token
        self.user_tokens: dict[str, str] = {}

    def request(self, method: str, path: str, body=None, token: str | None = None, form: dict | None = None,
                timeout: float = 120):
        headers = {"Authorization": f"token {token or self.token}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif form is not None:
            data, headers["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)

    def user_api(self, user: str, method: str, path: str, **kwargs):
        return self.request(method, f"/user/{user}{path}", token=self.user_tokens[user], **kwargs)

    def spawn(self, names, timeout: float = 240) -> float:
        start = time.monotonic()
        for name in names:
            self.request("POST", f"/hub/api/users/{name}/server")
        pending = set(names)
        while pending:
            for name in list(pending):
                _, model = self.request("GET", f"/hub/api/users/{name}")
                server = model.get("servers", {}).get("")
                if server and server.get("ready"):
                    pending.discard(name)
            if time.monotonic() - start > timeout:
                pytest.fail(f"servers of {sorted(pending)} did not start in {timeout:g} s")
            time.sleep(1)
        return time.monotonic() - start


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """Accounts, site configuration, exchange, and a running JupyterHub; everything undone afterwards."""
    import slmcourse.bundled

    base = Path("/var/tmp") / f"slmcourse-hub-{uuid.uuid4().hex[:8]}"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    traversable = Traversable()
    hub_process = None
    started = time.monotonic()
    users: dict[str, pwd.struct_passwd] = {}
    try:
        # 1. the course's environment and the shared, read-only model cache
        cache = Path(slmcourse.bundled.cache_dir()).resolve()
        if not cache.is_dir() or not any(cache.iterdir()):
            pytest.fail(f"the model cache {cache} is empty: `make models` prepares it (the admin's step 2)")
        for path in (VENV_BIN, ROOT / "utils", cache):
            traversable.reach(path)
        subprocess.run(["chmod", "-R", "a+rX", str(cache)], check=True)

        # 2. accounts
        for name in (INSTRUCTOR, *LEARNERS):
            users[name] = _add_user(name, base / "home" / name)

        # 3. the exchange and the site configuration every server reads (JUPYTER_CONFIG_PATH)
        exchange = base / "exchange"
        exchange.mkdir()
        exchange.chmod(0o777)
        site = base / "jupyter"                      # the guide's /srv/slmcourse/jupyter
        (site / "learners" / "labconfig").mkdir(parents=True)
        fragment = (DOCS / "nbgrader_exchange_config.py").read_text()
        assert 'c.Exchange.root = "/srv/nbgrader/exchange"' in fragment
        (site / "nbgrader_config.py").write_text(fragment.replace("/srv/nbgrader/exchange", str(exchange)))
        for name, text in _learner_site_files().items():
            (site / "learners" / name).write_text(text)
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               "JUPYTER_CONFIG_PATH": str(site), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.pop("JUPYTER_CONFIG_DIR", None)
        env.pop("JUPYTER_RUNTIME_DIR", None)
        # the instructor's nbgrader settings: where the course is (their server starts in their home)
        teacher = users[INSTRUCTOR]
        course = Path(teacher.pw_dir) / "small-language-models"
        (Path(teacher.pw_dir) / ".jupyter").mkdir()
        (Path(teacher.pw_dir) / ".jupyter" / "nbgrader_config.py").write_text(
            (DOCS / "nbgrader_instructor_config.py").read_text().replace("/home/instructor", teacher.pw_dir))
        subprocess.run(["chown", "-R", f"{teacher.pw_uid}:{teacher.pw_gid}", f"{teacher.pw_dir}/.jupyter"], check=True)

        # 4. the hub: the guide's fragment, then this machine's paths
        state = base / "hub"
        state.mkdir(mode=0o700)
        token = secrets.token_hex(32)
        port, hub_port, api_port = _free_port(), _free_port(), _free_port()
        config = state / "jupyterhub_config.py"
        config.write_text(f"""
c = get_config()
exec(compile(open({str(DOCS / 'jupyterhub_config.py')!r}).read(), "jupyterhub_config.py", "exec"))
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.pid_file = {str(state / 'proxy.pid')!r}
c.JupyterHub.db_url = "sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(state / 'cookie_secret')!r}
c.JupyterHub.authenticator_class = "dummy"     # the test's accounts have no password; a class uses PAM
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allowed_users = {set((INSTRUCTOR, *LEARNERS))!r}
c.Spawner.cmd = [{str(VENV_BIN / 'jupyterhub-singleuser')!r}]
c.Spawner.environment["SLMCOURSE_CACHE"] = {str(cache)!r}
SITE_CONFIG = {str(site)!r}
c.JupyterHub.load_groups = {{"instructors": {{"users": [{INSTRUCTOR!r}]}}}}
c.Spawner.start_timeout = 240
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}   # the API answers at once; the test polls
c.Spawner.http_timeout = 240
c.JupyterHub.services.append({{"name": "classroom-test", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{"name": "classroom-test", "services": ["classroom-test"],
    "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"]}})
""")
        log = (state / "hub.log").open("w")
        hub_process = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(config)], cwd=state, env=env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        hub = Hub(f"http://127.0.0.1:{port}", token)
        deadline = time.monotonic() + 120
        while True:
            try:
                hub.request("GET", "/hub/api/users", timeout=5)
                break
            except (OSError, urllib.error.HTTPError):
                if hub_process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterHub did not start:\n" + (state / "hub.log").read_text()[-4000:])
                time.sleep(0.5)
        for name in users:
            _, answer = hub.request("POST", f"/hub/api/users/{name}/tokens", body={"expires_in": 3600,
                                                                                   "note": "classroom test"})
            hub.user_tokens[name] = answer["token"]
        hub.users, hub.env, hub.course, hub.cache, hub.exchange, hub.state = users, env, course, cache, exchange, state
        hub.measured = {"classroom_setup_s": round(time.monotonic() - started, 1)}
        yield hub
    finally:
        if hub_process is not None:
            hub_process.send_signal(signal.SIGTERM)   # the hub stops the servers and the proxy it started
            try:
                hub_process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(hub_process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if (base / "hub" / "proxy.pid").exists():
            try:
                os.kill(int((base / "hub" / "proxy.pid").read_text()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass
        if (base / "hub" / "hub.log").exists():
            BUILD.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base / "hub" / "hub.log", BUILD / "hub.log")
        for name in (INSTRUCTOR, *LEARNERS):
            _remove_user(name)
        traversable.undo()
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# talking to a kernel through the server's API
# ------------------------------------------------------------------------------------------------

def _run_cells(hub: Hub, user: str, sources: list[str], timeout: float = 300):
    """Start a python3 kernel on the user's server, run the cells over its websocket; return their text output and
    the account's memory (resident, sum of peaks; MiB) measured before the kernel is shut down."""
    import websocket

    _, kernel = hub.user_api(user, "POST", "/api/kernels", body={"name": "python3"})
    ws = websocket.create_connection(f"{hub.base.replace('http', 'ws', 1)}/user/{user}/api/kernels/{kernel['id']}/channels",
                                     header=[f"Authorization: token {hub.user_tokens[user]}"], timeout=timeout)
    outputs = []
    try:
        for source in sources:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": user,
                                           "session": uuid.uuid4().hex, "version": "5.3"},
                                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                                "content": {"code": source, "silent": False, "store_history": True,
                                            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
            text, status = [], None
            deadline = time.monotonic() + timeout
            while status is None and time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if kind == "stream":
                    text.append(msg["content"]["text"])
                elif kind == "error":
                    text.append("\n".join(msg["content"]["traceback"]))
                elif kind == "execute_reply":
                    status = msg["content"]["status"]
            assert status == "ok", f"{user}: cell failed ({status}):\n{source}\n{''.join(text)[-3000:]}"
            outputs.append("".join(text))
        memory = _user_memory(user)          # server + kernel, before the kernel is shut down
    finally:
        ws.close()
        hub.user_api(user, "DELETE", f"/api/kernels/{kernel['id']}")
    return outputs, memory


def _user_memory(name: str) -> tuple[float, float]:
    """(resident now, sum of each process's peak) in MiB over all processes of one account."""
    uid = pwd.getpwnam(name).pw_uid
    now = peak = 0
    for proc in psutil.process_iter(["uids"]):
        try:
            if proc.info["uids"] and proc.info["uids"].real == uid:
                now += proc.memory_info().rss
                status = Path(f"/proc/{proc.pid}/status").read_text()
                peak += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) * 1024
        except (psutil.Error, OSError, StopIteration):
            pass
    return now / 2**20, peak / 2**20


def _mem_limit_mib() -> float:
    text = (DOCS / "jupyterhub_config.py").read_text()
    import re
    spec = re.search(r'c\.Spawner\.mem_limit = "([\d.]+)G"', text).group(1)
    return float(spec) * 1024


# ------------------------------------------------------------------------------------------------
# the tests, in the order a class goes
# ------------------------------------------------------------------------------------------------

def test_learners_servers_spawn_and_run_lesson_0_from_the_shared_cache(classroom):
    hub = classroom
    seconds = hub.spawn([INSTRUCTOR, *LEARNERS])
    hub.measured["spawn_s"] = round(seconds, 1)
    lesson = nbformat.read(ROOT / "course" / "00_setup.ipynb", as_version=4)
    cells = [c.source for c in lesson.cells if c.cell_type == "code"][:LESSON_0_CELLS]
    assert "prepare_all" in cells[-1], "lesson 0's first cells should end with preparing the models"
    limit = _mem_limit_mib()
    for learner in LEARNERS:
        _, contents = hub.user_api(learner, "GET", "/api/contents/small-language-models/course")     # the start page's folder
        assert any(item["name"] == "00_setup.ipynb" for item in contents["content"])
    # both learners at once, as in a class
    from concurrent.futures import ThreadPoolExecutor
    start = time.monotonic()
    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        results = dict(zip(LEARNERS, pool.map(lambda learner: _run_cells(hub, learner, cells), LEARNERS)))
    hub.measured["lesson0_first_cells_both_learners_s"] = round(time.monotonic() - start, 1)
    for learner, (outputs, (now, peak)) in results.items():
        joined = "".join(outputs)
        assert "ready, SHA-256 verified" in joined and "converted now" not in joined, joined[-2000:]
        assert "torch:" in joined, joined[-2000:]     # the environment report
        hub.measured[f"memory_{learner}_mib"] = {"resident": round(now), "peak_sum": round(peak)}
        print(f"{learner}: server + kernel {now:.0f} MiB resident, {peak:.0f} MiB peak (sum of process peaks); "
              f"the guide's mem_limit is {limit:.0f} MiB")
        assert peak < limit, f"{learner} peaked at {peak:.0f} MiB, above the guide's limit of {limit:.0f} MiB"
    # the learners' servers run without the instructor's tools, the instructor's with them
    for learner in LEARNERS:
        with pytest.raises(urllib.error.HTTPError) as err:
            hub.user_api(learner, "GET", "/formgrader/api/assignments")
        assert err.value.code == 404
    status, _ = hub.user_api(INSTRUCTOR, "GET", "/formgrader/api/assignments")
    assert status == 200


def _grade(hub: Hub, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = _as_user(hub.users[INSTRUCTOR], [sys.executable, str(ROOT / "utils" / "grade.py"),
                                              "--course-dir", str(hub.course), *args], hub.env, hub.course, timeout)
    assert result.returncode == 0, f"grade.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _answers(solution: dict) -> dict[str, str]:
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def test_the_exchange_round_trip_grades_a_full_and_a_blank_submission(classroom):
    hub = classroom
    ada, bob = LEARNERS
    start = time.monotonic()
    committed = {p.name: p.read_bytes() for p in (hub.course / "assignments" / ASSIGNMENT).iterdir()}
    release = _grade(hub, "exchange", "release", ASSIGNMENT)
    assert "released" in release.stdout
    assert (hub.exchange / COURSE_ID / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    assert committed == {p.name: p.read_bytes() for p in (hub.course / "assignments" / ASSIGNMENT).iterdir()}, \
        "releasing rewrote assignments/"

    solution = nbformat.read(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    fetched = f"/api/contents/{COURSE_ID}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    for learner in LEARNERS:
        _, listed = hub.user_api(learner, "GET", f"/assignments?course_id={COURSE_ID}")
        assert any(a["assignment_id"] == ASSIGNMENT and a["status"] == "released" for a in listed["value"]), listed
        hub.user_api(learner, "POST", "/assignments/fetch", form={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
        _, model = hub.user_api(learner, "GET", fetched)      # lands in ~/<course id>/<assignment>/
        nb = nbformat.from_dict(model["content"])
        if learner == ada:                                     # ada fills in every answer; bob submits it blank
            answers = _answers(solution)
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in answers and cell.metadata["nbgrader"].get("solution"):
                    cell.source = answers[grade_id]
            hub.user_api(learner, "PUT", fetched, body={"type": "notebook", "format": "json", "content": nb})
        _, answer = hub.user_api(learner, "POST", "/assignments/submit",
                                 form={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
        assert not (isinstance(answer, dict) and answer.get("success") is False), answer

    collect = _grade(hub, "exchange", "collect", ASSIGNMENT)
    print(collect.stdout)
    import re
    written = re.search(r"^wrote (\S+grades\.csv)", collect.stdout, re.M)     # where grade.py put this batch's report
    assert written, f"grade.py named no grades.csv:\n{collect.stdout}\n{collect.stderr}"
    report = Path(written.group(1))
    with open(report) as fh:
        import csv
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    assert set(rows) == set(LEARNERS), rows
    assert all(row["status"] == "graded" for row in rows.values()), rows
    full = float(rows[ada]["autograded_max"])
    assert full > 0 and float(rows[ada]["autograded_score"]) == full, rows[ada]
    assert float(rows[bob]["autograded_score"]) == 0, rows[bob]

    _grade(hub, "exchange", "feedback", ASSIGNMENT)
    for learner in LEARNERS:
        hub.user_api(learner, "POST", "/assignments/fetch_feedback",
                     form={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
        _, folder = hub.user_api(learner, "GET", f"/api/contents/{COURSE_ID}/{ASSIGNMENT}/feedback")
        [stamp] = folder["content"]
        _, page = hub.user_api(learner, "GET", urllib.parse.quote(f"/api/contents/{stamp['path']}/{ASSIGNMENT}.html"))
        score = float(rows[learner]["autograded_score"])
        assert "Score:" in page["content"] or f"{score:g}" in page["content"]
    hub.measured["exchange_round_s"] = round(time.monotonic() - start, 1)


def test_the_formgrader_opens_for_the_instructor_in_chromium(classroom):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does) to load the formgrader page")
    from playwright.sync_api import sync_playwright

    hub = classroom
    BUILD.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(f"{hub.base}/hub/login")
            page.fill("input[name=username]", INSTRUCTOR)
            page.fill("input[name=password]", PASSWORD)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url("**/user/**", timeout=60_000)
            page.goto(f"{hub.base}/user/{INSTRUCTOR}/formgrader/manage_assignments")
            page.get_by_text(ASSIGNMENT).first.wait_for(timeout=60_000)
            page.screenshot(path=str(BUILD / "formgrader.png"), full_page=True)
            assert "Manage Assignments" in page.content()
        finally:
            browser.close()
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / "measured.json").write_text(json.dumps(hub.measured, indent=1) + "\n")
    print(json.dumps(hub.measured))
