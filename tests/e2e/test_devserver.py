"""`make run` for real: `python -m meter.devserver` in a subprocess, with its own instance dir and ports.

Register through the printed curl line, read the activation link the mail catcher printed, follow it
like a browser (GET the confirm page, POST its form with the CSRF token and the cookie), stop with
SIGINT and check nothing it started is left; then start again and check the data was kept.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from meter.dev.redis_server import free_port, stop_process
from tests.paths import ROOT_DIR

REPO = ROOT_DIR
KEY_RE = re.compile(r"^\s+(mk_[A-Za-z0-9]+)\s*$")
EMAIL = "pembaca@example.com"
PASSWORD = "rahasia-sekali"

# `make run` on a fresh instance runs one Python process after another (the migrations, the demo site
# and its policy, the console's owner, then gunicorn), each importing meter: on a 2-core machine at a
# load average of 9 it printed its banner after 99 s. The wait for it has room for that; a devserver
# that hangs still fails, after STARTUP seconds. The test below starts it twice: 241 s at load 10.
STARTUP = 240.0

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds child processes through /proc"),
    pytest.mark.timeout(2 * STARTUP + 180),
]


class Devserver:
    """One `python -m meter.devserver` run; its output is collected line by line."""

    def __init__(self, instance: Path, port: int, mail_port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"REDIS_URL", "MAIL_SERVER", "DATABASE_URL", "SECRET_KEY", "PUBLIC_BASE_URL", "METER_PORT"}
        }
        env.update(
            METER_INSTANCE_DIR=str(instance),
            MAIL_PORT=str(mail_port),
            NO_COLOR="1",
            ARGON2_TIME_COST="1",  # registration and login stay quick; the cost is not what is tested
            ARGON2_MEMORY_COST="1024",
            ARGON2_PARALLELISM="1",
            # the second run registers the address again within minutes: the mail budget is not what is tested
            RATELIMIT_RESEND_EMAIL="100/minute",
        )
        self.env = env
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "meter.dev.devserver", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<EOF>")
            self._cond.notify_all()

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern | str, start: int = 0, timeout: float = 30.0) -> tuple[re.Match, int]:
        """The first line from `start` on that matches, and the index after it."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            index = start
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    index += 1
                    if match:
                        return match, index
                    if self.lines[index - 1] == "<EOF>":
                        pytest.fail(f"devserver ended before printing {regex.pattern!r}:\n{self.output()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"devserver did not print {regex.pattern!r} in {timeout}s:\n{self.output()}")
                self._cond.wait(left)

    def ready(self) -> tuple[str, int]:
        """Wait for the banner; the demo API key printed alone on its line, and the line index after it."""
        _, after = self.wait_for(r"^meter is ready on " + re.escape(self.base), timeout=STARTUP)
        match, after = self.wait_for(KEY_RE, after)
        assert http("GET", f"{self.base}/healthz")[0] == 200
        return match.group(1), after

    def descendants(self) -> set[int]:
        return descendants(self.process.pid)

    def interrupt(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def kill_all(self) -> None:
        """Clean-up after a failed test: nothing may outlive it."""
        left = self.descendants()
        stop_process(self.process, timeout=20)
        for pid in left:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def http(method, url, body=None, key=None, opener=None, form=None, request_id=None):
    data = None
    request = urllib.request.Request(url, method=method)
    if request_id:
        request.add_header("X-Request-ID", request_id)
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with (opener or urllib.request.build_opener()).open(request, data=data, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def register(server: Devserver, key: str) -> None:
    """Run the register line exactly as printed (with curl when there is one), else the same call."""
    command = next(line for line in server.lines if line.startswith("curl ") and "/v1/readers " in line)
    assert key in command and server.base in command and EMAIL in command
    if shutil.which("curl") and shutil.which("bash"):
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=20, check=True).stdout
        assert json.loads(out) == {"status": "activation_sent"}
    else:
        assert http("POST", f"{server.base}/v1/readers", {"email": EMAIL, "password": PASSWORD}, key)[0] == 202


def access(server: Devserver, key: str, token: str, article: str) -> dict:
    body = {"reader_token": token, "article": {"id": article, "class": "metered"}}
    status, text = http("POST", f"{server.base}/v1/access", body, key)
    assert status == 200, text
    return json.loads(text)


def decisions(metrics: str) -> float:
    """meter_access_decisions_total of the free-content answers, summed over the exposition."""
    pattern = r'^meter_access_decisions_total\{[^}]*reason="free_content"[^}]*\} ([0-9.e+]+)$'
    return sum(float(value) for value in re.findall(pattern, metrics, re.M))


def production_like(server: Devserver, key: str) -> None:
    """Two gunicorn workers whose metrics add up, one log line per request, an icon for browsers."""
    before = decisions(http("GET", f"{server.base}/metrics")[1])  # the devserver's own probe of the key
    mark = len(server.lines)
    body = {"article": {"id": "demo:probe", "class": "free"}, "record": False}
    for i in range(8):
        assert http("POST", f"{server.base}/v1/access", body, key, request_id=f"one-line-{i}")[0] == 200
    scrapes = {decisions(http("GET", f"{server.base}/metrics")[1]) for _ in range(8)}
    assert scrapes == {before + 8}, (before, scrapes)  # whichever worker answers, it counts both workers' checks
    request = urllib.request.Request(f"{server.base}/favicon.ico", headers={"X-Request-ID": "one-line-icon"})
    with urllib.request.urlopen(request, timeout=10) as icon:
        assert icon.status == 200 and icon.headers["Content-Type"] == "image/x-icon"
    ids = [f"one-line-{i}" for i in range(8)] + ["one-line-icon"]
    for request_id in ids:
        server.wait_for(rf'"request_id": "{request_id}"', mark)
    output = "\n".join(server.lines[mark:])
    assert all(output.count(f'"{request_id}"') == 1 for request_id in ids), output  # one line each...
    assert not re.search(r'"(GET|POST) /\S* HTTP/1\.[01]" \d{3}', output), output  # ...and no access log line


def test_make_run_serves_catches_mail_stops_cleanly_and_keeps_data(tmp_path):
    instance = tmp_path / "instance"
    port = mail_port = free_port()
    while mail_port == port:
        mail_port = free_port()

    first = Devserver(instance, port, mail_port)
    try:
        key, after_banner = first.ready()
        assert re.search(rf"catcher on 127\.0\.0\.1:{mail_port}", first.output())
        assert re.search(r"^\s+inbox\s+http://127\.0\.0\.1:\d+/ : the caught mails", first.output(), re.M)
        assert re.search(r"^meter\s+\|\s+migration step  1 of \d+: 0001 ", first.output(), re.M)
        assert (instance / "make-run.env").read_text().splitlines()[-1] == f"PUBLIC_BASE_URL={first.base}"
        assert (instance / "demo-api-key").read_text().strip() == key
        assert (instance / "demo-api-key").stat().st_mode & 0o777 == 0o600
        started = first.descendants()
        assert len(started) >= 4  # redis-server, the mail worker, gunicorn and its workers

        # a second devserver on the same data refuses to start
        clash = subprocess.run(
            [sys.executable, "-m", "meter.dev.devserver", "--port", str(free_port())],
            cwd=REPO,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert clash.returncode == 1 and "already using" in clash.stdout

        register(first, key)
        link_re = rf"^mail\s+\|\s+({re.escape(first.base)}/demo/activate/\S+)$"
        match, _ = first.wait_for(link_re, after_banner, timeout=20)
        link = match.group(1)
        assert re.search(rf"^mail\s+\|\s+To:\s+{re.escape(EMAIL)}$", first.output(), re.M)

        # a browser: the GET shows a confirm page only; its form POSTs the CSRF token with the cookie
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        status, page = http("GET", link, opener=browser)
        assert status == 200 and "csrf_token" in page
        action = html.unescape(re.search(r'<form[^>]*action="([^"]+)"', page).group(1))
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert http("POST", first.base + action, opener=browser, form={})[0] == 400  # no CSRF token
        status, done = http("POST", first.base + action, opener=browser, form={"csrf_token": csrf})
        assert status == 200 and "terkonfirmasi" in done

        status, text = http("POST", f"{first.base}/v1/sessions", {"email": EMAIL, "password": PASSWORD}, key)
        assert status == 200, text
        reader_token = json.loads(text)["reader_token"]
        assert access(first, key, reader_token, "demo:koran:a")["reason"] == "unlocked_now"

        production_like(first, key)

        # stopped from a script: the devserver's pid is in instance/devserver.pid
        pid = int((instance / "devserver.pid").read_text())
        assert pid == first.process.pid
        os.kill(pid, signal.SIGINT)
        assert first.process.wait(timeout=30) == 0
        assert not (instance / "devserver.pid").exists()
        assert "stopped." in first.output()
        assert [pid for pid in started if alive(pid)] == []
    finally:
        first.kill_all()

    second = Devserver(instance, port, mail_port)
    try:
        again, after_banner = second.ready()
        assert again == key  # the kept demo key is printed again
        started = second.descendants()
        # the secret key, the database and the meter were kept: the old token still reads article a
        answer = access(second, key, reader_token, "demo:koran:a")
        assert (answer["allowed"], answer["reason"], answer["meter"]["used"]) == (True, "already_unlocked", 1)
        register(second, key)  # the address is taken: the "you already have an account" mail
        second.wait_for(r"^mail\s+\|\s+Subject: Anda sudah memiliki akun", after_banner, timeout=20)
        assert second.interrupt() == 0
        assert [pid for pid in started if alive(pid)] == []
    finally:
        second.kill_all()
