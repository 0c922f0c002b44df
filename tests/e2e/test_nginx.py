"""The deployment kit end to end: Debian's nginx with deploy/nginx/meter.conf (TLS on a non-default
port) in front of gunicorn with deploy/gunicorn.conf.py, driven as a reader's browser and as a
publisher's server would.

Behind the first, hand-written snippet every form was refused on :8443 (Host without its port), and
activation tokens stood in nginx's access log. Here the reader registers through the form, activates from
the real mail, logs in; the API answers through the same nginx; and the access log carries each
request's id and not one token.
"""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest
import requests

from tests.conftest import token_of
from tests.servers import DEPLOY_CONFIG, NGINX, Gunicorn, Nginx, server_env

pytestmark = [pytest.mark.database_agnostic, pytest.mark.servers, pytest.mark.timeout(120)]

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
EMAIL, PASSWORD = "pembaca@example.com", "rahasia-sekali"


def missing_tools() -> str | None:
    if not os.access(NGINX, os.X_OK):
        return f"{NGINX} is not installed (apt-get install nginx-light; `make test` does it as root)"
    if shutil.which("openssl") is None:
        return "the openssl command is not installed (it makes the test's certificate)"
    return None


@pytest.fixture
def stack(app, api, database_url, redis_url, smtp_server, tmp_path):
    """gunicorn (deployment settings) behind nginx (deployment server block); yields the nginx."""
    reason = missing_tools()
    if reason:
        print(f"\nSKIPPED: {reason}")
        pytest.skip(reason)
    controller, _mailbox = smtp_server
    env = server_env(
        database_url,
        redis_url,
        TRUSTED_PROXIES="1",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(controller.port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    env["LOG_LEVEL"] = "INFO"  # meter's request lines, to follow one request id through both logs
    gunicorn = Gunicorn(env, workers=2, log=tmp_path / "gunicorn.log", config=DEPLOY_CONFIG)
    nginx = Nginx(tmp_path / "nginx", gunicorn.port)
    env["PUBLIC_BASE_URL"] = nginx.url  # the links in mail: through nginx, port and all
    gunicorn.start()
    try:
        nginx.start()
        nginx.gunicorn_log = tmp_path / "gunicorn.log"
        yield nginx
    finally:
        nginx.stop()
        gunicorn.stop()


class Browser:
    """A requests session that trusts the test's certificate and sends a Referer as a browser does."""

    def __init__(self, nginx: Nginx) -> None:
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE or a proxy from the environment would win
        self.session.verify = str(nginx.cert)
        self.base = nginx.url
        self.request_ids: list[str] = []
        self.secrets: list[str] = []  # every token and CSRF token seen: none may reach a log

    def _seen(self, response: requests.Response) -> requests.Response:
        for r in [*response.history, response]:
            if "X-Request-ID" in r.headers:
                self.request_ids.append(r.headers["X-Request-ID"])
        return response

    def get(self, path: str, **kw) -> requests.Response:
        url = path if path.startswith("https://") else self.base + path
        return self._seen(self.session.get(url, timeout=10, **kw))

    def form(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        token = CSRF_RE.search(page.text).group(1)
        self.secrets.append(token)
        return token

    def call(self, method: str, path: str, **kw) -> requests.Response:
        """An API call (no cookies needed, none harmed)."""
        return self._seen(self.session.request(method, self.base + path, timeout=10, **kw))

    def post(self, path: str, data: dict, referer: str | None = None) -> requests.Response:
        url = path if path.startswith("https://") else self.base + path
        headers = {"Referer": referer or url}
        return self._seen(self.session.post(url, data=data, headers=headers, timeout=10))


def test_the_reader_journey_and_the_api_through_nginx_with_tls_on_a_non_default_port(stack, api, mailbox, deliver):
    browser = Browser(stack)

    # Register through the form (CSRF token, Referer over https on a non-default port).
    token = browser.form("/tempo/register?lang=en")
    sent = browser.post("/tempo/register", {"csrf_token": token, "email": EMAIL, "password": PASSWORD, "website": ""})
    assert sent.status_code == 200, sent.text
    assert sent.url.startswith(f"{stack.url}/tempo/activation-sent") and EMAIL in sent.text
    assert "Strict-Transport-Security" in sent.headers  # meter knows the request came over https

    # The mail's link leads back through nginx, port included.
    assert deliver() == (1, 0)
    [mail] = mailbox.to(EMAIL)
    text = mail["msg"].get_body(preferencelist=("plain",)).get_content()
    link = next(word for word in text.split() if "/activate/" in word)
    assert link.startswith(f"{stack.url}/tempo/activate/")
    activation_token = token_of(link)
    browser.secrets.append(activation_token)

    # The activation page only asks; its form POSTs to the same URL.
    confirm = browser.form(link)
    done = browser.post(link, {"csrf_token": confirm})
    assert done.status_code == 200 and "Your email is confirmed" in done.text, done.text
    browser.secrets.append(browser.session.cookies["meter_r_tempo"])

    # Log in through the form.
    login = browser.form("/tempo/login?lang=en")
    logged = browser.post("/tempo/login", {"csrf_token": login, "email": EMAIL, "password": PASSWORD})
    assert logged.status_code == 200 and "You are logged in" in logged.text, logged.text

    # The API through the same nginx.
    auth = {"Authorization": f"Bearer {api.key}"}
    session = browser.call("POST", "/v1/sessions", json={"email": EMAIL, "password": PASSWORD}, headers=auth)
    assert session.status_code == 200, session.text
    reader_token = session.json()["reader_token"]
    browser.secrets.append(reader_token)
    body = {"reader_token": reader_token, "article": {"id": "tempo:koran:nato"}}
    check = browser.call("POST", "/v1/access", json=body, headers=auth)
    assert check.status_code == 200 and check.json()["reason"] == "unlocked_now", check.text
    metrics = browser.get("/metrics")
    assert metrics.status_code == 200 and "meter_access_decisions_total" in metrics.text

    # Bodies: over MAX_CONTENT_LENGTH meter answers its own 413; over client_max_body_size nginx does.
    json_type = {"Content-Type": "application/json"}
    big = browser.call("POST", "/v1/access", data=b"x" * 100_000, headers=auth | json_type)
    assert big.status_code == 413 and big.headers["Content-Type"] == "application/problem+json"
    huge = browser.call("POST", "/v1/access", data=b"x" * 2_000_000, headers=auth | json_type)
    assert huge.status_code == 413 and "X-Request-ID" not in huge.headers  # refused by nginx, gunicorn never saw it

    # Plain http is sent to https, with the path (and a POST stays a POST).
    plain = browser.session.get(
        f"http://127.0.0.1:{stack.http_port}/tempo/login?lang=en", allow_redirects=False, timeout=10
    )
    assert plain.status_code == 308 and plain.headers["Location"].startswith("https://127.0.0.1")
    assert plain.headers["Location"].endswith("/tempo/login?lang=en")

    # The access log: every request's id (the one meter answered with), the token masked, no secret.
    log = stack.access_log()
    logged_ids = {line["request_id"] for line in log}
    assert set(browser.request_ids) <= logged_ids, set(browser.request_ids) - logged_ids
    paths = [line["path"] for line in log]
    assert "/tempo/activate/[token]" in paths and paths.count("/tempo/activate/[token]") == 2  # GET and POST
    assert "/tempo/login" in paths and not any("?" in p for p in paths)
    everything = (stack.logs / "meter.access.log").read_text() + (stack.logs / "meter.error.log").read_text()
    for secret in browser.secrets:
        assert secret not in everything
    # The same id is on meter's own log line for that request (within half a second: meter.platform.logs batches
    # lines; waited for up to 30 s, as the worker's writing thread waits for CPU on a busy machine).
    deadline = time.monotonic() + 30
    while check.headers["X-Request-ID"] not in stack.gunicorn_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    gunicorn_log = stack.gunicorn_log.read_text()
    assert check.headers["X-Request-ID"] in gunicorn_log and activation_token not in gunicorn_log


def test_a_form_refused_behind_nginx_is_meters_page_in_the_readers_language(stack):
    browser = Browser(stack)
    browser.form("/tempo/login")
    refused = browser.post("/tempo/login", {"csrf_token": "forged", "email": EMAIL, "password": PASSWORD})
    assert refused.status_code == 400
    assert "Formulir ini sudah kedaluwarsa" in refused.text and "<main" in refused.text


def _slow_body(host: str, port: int, tls: bool, path: str = "/v1/access"):
    """A client that promises a 1000-byte body, sends one byte of it, and waits: the slowloris of bodies."""
    import socket
    import ssl

    raw = socket.create_connection((host, port), timeout=5)
    if not tls:
        conn = raw
    else:  # the test's own self-signed certificate: not verified
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = context.wrap_socket(raw, server_hostname=host)
    conn.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 1000\r\n\r\n{{".encode())
    return conn


def _health_within(url: str, seconds: float) -> float:
    import time

    started = time.monotonic()
    answer = requests.get(url + "/healthz", timeout=seconds, verify=False)
    assert answer.status_code == 200
    return time.monotonic() - started


def test_nginxs_own_answers_carry_hsts_and_nosniff_and_the_redirect_keeps_the_port(stack, api):
    """nginx's 413 had neither header; meter's answers must not carry them twice; http → https kept
    the default port and so sent a reader on :8443 to :443."""
    browser = Browser(stack)
    too_big = browser.call(
        "POST", "/v1/access", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413
    meters = browser.call("GET", "/healthz")
    for response in (too_big, meters):
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.headers
    raw = meters.raw.headers.getlist("Strict-Transport-Security")
    assert raw == ["max-age=31536000"], raw  # one, not meter's and nginx's
    plain = requests.get(f"http://127.0.0.1:{stack.http_port}/tempo/login?next=/x", allow_redirects=False, timeout=10)
    assert plain.status_code == 308
    assert plain.headers["Location"] == f"https://127.0.0.1:{stack.https_port}/tempo/login?next=/x"


def test_slow_bodies_do_not_stall_meter_behind_nginx(stack):
    """Connections that send `Content-Length: 1000` and never finish: nginx buffers request bodies
    (proxy_request_buffering on), so none of them holds a gunicorn worker, and /healthz answers at once.
    Directly in front of gunicorn, 2 sync workers were stalled by 3 such connections for 20 s."""
    held = [_slow_body("127.0.0.1", stack.https_port, tls=True) for _ in range(40)]
    try:
        assert _health_within(stack.url, 2.0) < 1.0
    finally:
        for conn in held:
            conn.close()


def test_slow_bodies_stall_sync_workers_without_the_proxy(app, database_url, redis_url, tmp_path):
    """The other half of the demonstration: 2 sync workers and 3 slow bodies, no nginx: /healthz waits."""
    env = server_env(database_url, redis_url)
    gunicorn = Gunicorn(env, workers=2, threads=1, log=tmp_path / "gunicorn.log", worker_class="sync").start()
    held = [_slow_body("127.0.0.1", gunicorn.port, tls=False) for _ in range(3)]
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            _health_within(gunicorn.url, 2.0)
    finally:
        for conn in held:
            conn.close()
        gunicorn.stop()
