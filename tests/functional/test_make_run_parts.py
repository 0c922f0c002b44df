"""The parts of `make run` a newcomer meets first, each without starting it all (tests/e2e/test_devserver.py
does that): the migration log in the chain's order, the address the operator's commands read, the
caught mails' inbox in the browser, and the demo OpenID provider's set-up."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pytest

from meter.dev import demo_provider, devserver, mail_catcher, mail_inbox
from meter.dev.redis_server import free_port
from tests.paths import ROOT_DIR

REPO = ROOT_DIR

ALEMBIC = """INFO  [alembic.runtime.migration] Context impl SQLiteImpl.
INFO  [alembic.runtime.migration] Running upgrade 0014 -> 0017, outbox.sender: each mail's headers
INFO  [alembic.runtime.migration] Running upgrade 0017 -> 0016, the reader's own account
INFO  [alembic.runtime.migration] Running upgrade 0016 -> 0018, gifts"""


def test_the_migration_log_reads_in_the_chains_order_with_a_label():
    chain = devserver.migration_chain()
    assert chain[0] == "0001" and len(chain) == len(set(chain)) >= 12
    assert chain.index("0017") < chain.index("0016") < chain.index("0018")  # ids out of their numbers' order
    log = devserver.migration_log(ALEMBIC, chain).splitlines()
    n = len(chain)
    step = chain.index("0017") + 1
    assert log == [
        "INFO  [alembic.runtime.migration] Context impl SQLiteImpl.",
        f"migration step {step:>2} of {n}: 0017  outbox.sender: each mail's headers",
        f"migration step {step + 1:>2} of {n}: 0016  the reader's own account",
        f"migration step {step + 2:>2} of {n}: 0018  gifts",
    ]


def _public_base_url(instance: Path, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in {"PUBLIC_BASE_URL", "METER_ENV"}}
    environ.update(METER_INSTANCE_DIR=str(instance), **env)
    code = "import config; print(config.Config.PUBLIC_BASE_URL)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_operators_commands_read_the_address_make_run_serves(tmp_path):
    """`make run PORT=5047` writes its PUBLIC_BASE_URL under instance/; `METER_ENV=development bin/meter`
    reads it (so `sites login-providers add` prints http://127.0.0.1:5047/…); the environment still wins,
    and production never reads the file."""
    assert _public_base_url(tmp_path, METER_ENV="development") == "http://127.0.0.1:5000"
    devserver.remember_address(str(tmp_path), "http://127.0.0.1:5047")
    assert _public_base_url(tmp_path, METER_ENV="development") == "http://127.0.0.1:5047"
    set_here = _public_base_url(tmp_path, METER_ENV="development", PUBLIC_BASE_URL="https://meter.example")
    assert set_here == "https://meter.example"
    assert _public_base_url(tmp_path, METER_ENV="production") == ""


def _get(url: str, method: str = "GET") -> tuple[int, dict, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture
def inbox():
    box = mail_inbox.Mailbox()
    port = free_port()
    controller = mail_catcher.start("127.0.0.1", port, write=lambda _text: None, mailbox=box)
    web = mail_inbox.Inbox(box, "127.0.0.1", 0)
    try:
        yield port, web.url
    finally:
        web.stop()
        controller.stop()


def test_the_caught_mails_are_an_inbox_in_the_browser(inbox):
    smtp_port, url = inbox
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "meter <no-reply@localhost>", "pembaca@example.com", "Aktifkan akun Anda"
    msg.set_content("Buka http://127.0.0.1:5000/demo/activate/abc")
    html = '<html><head></head><body><a href="http://127.0.0.1:5000/demo/activate/abc">Aktifkan</a><script>x()</script>'
    msg.add_alternative(html + "</body></html>", subtype="html")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as smtp:
        smtp.send_message(msg)

    status, _headers, listing = _get(url)
    assert status == 200 and 'href="/1">Aktifkan akun Anda</a>' in listing and "pembaca@example.com" in listing
    status, _headers, page = _get(f"{url}1")
    assert status == 200 and 'src="/1/html"' in page and 'href="/1/text"' in page and 'href="/1/raw"' in page
    status, headers, shown = _get(f"{url}1/html")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    policy = headers["Content-Security-Policy"]
    assert policy.startswith("sandbox ") and "allow-scripts" not in policy  # the mail's script never runs
    assert '<head><base target="_blank"></head>' in shown  # its links open outside the sandbox
    status, headers, text = _get(f"{url}1/text")
    assert status == 200 and headers["Content-Type"].startswith("text/plain") and "activate/abc" in text
    status, _headers, raw = _get(f"{url}1/raw")
    assert status == 200 and "Subject: Aktifkan akun Anda" in raw and "Content-Type: multipart/alternative" in raw
    assert _get(f"{url}2")[0] == 404 and _get(f"{url}1/other")[0] == 404 and _get(f"{url}x")[0] == 404
    assert _get(url, method="POST")[0] == 405


def test_the_app_never_serves_the_inbox(app, client):
    """Development only: the inbox is its own server beside the catcher, never a route of meter's app."""
    assert not any("inbox" in rule.rule for rule in app.url_map.iter_rules())
    assert client.get("/1/html").status_code == 404


def test_the_demo_provider_has_one_client_and_two_accounts(tmp_path):
    callback = "http://127.0.0.1:5047/demo/login/akun-demo/callback"
    config = demo_provider.config(str(tmp_path), 4444, [callback])
    [client] = config["clients"]
    assert client["client_id"] == "meter-demo" and client["redirect_uris"] == [callback]
    assert client["client_secret"] == demo_provider.client_secret(str(tmp_path))  # made once, kept
    assert (tmp_path / demo_provider.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    accounts = config["accounts"]
    assert [a.get("email_verified") for a in accounts.values()] == [True, None]  # one vouched for, one without
    assert "email" not in accounts["nora"]
    json.dumps(config)  # what tests/oidc/server.mjs reads


def test_without_node_the_banner_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(demo_provider.shutil, "which", lambda _name: None)
    why = demo_provider.unavailable()
    assert "Node.js is not installed" in why and "apt-get install nodejs npm" in why and "nodejs.org" in why
