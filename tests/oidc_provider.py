"""The real OpenID Connect provider of the tests: panva's oidc-provider (tests/oidc/), started with Node.

`make test` installs it from tests/oidc/package-lock.json (`npm ci`) when Node is there; a test that
needs it skips, and says why, where Node or the installed package is missing (like the browser tests
without Chromium). `sign_in_at_provider` walks the provider's own login and consent pages over HTTP,
as a reader's browser would, up to the redirect back to meter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.paths import TESTS_DIR

OIDC_DIR = TESTS_DIR / "oidc"
PASSWORD = "provider-pass"
ACCOUNTS = {
    "verified": {"email": "terverifikasi@example.com", "email_verified": True, "name": "Vera"},
    "unverified": {"email": "belum.pasti@example.com", "email_verified": False, "name": "Umar"},
    "noemail": {"name": "Nora"},
    "newcomer": {"email": "pendatang@example.com", "email_verified": True, "name": "Pendatang"},
    "existing": {"email": "pembaca@example.com", "email_verified": True, "name": "Pembaca"},
    "victim": {"email": "korban@example.com", "email_verified": True, "name": "Korban"},
}


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js not found: the tests against the real OpenID provider (tests/oidc) are skipped")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("tests/oidc is not installed (cd tests/oidc && npm ci; make test does it): provider tests skipped")
    return node


class OidcProvider:
    """oidc-provider on a free loopback port, with `clients` and the ACCOUNTS above."""

    def __init__(self, clients: list[dict], accounts: dict | None = None) -> None:
        self.config = {"port": 0, "password": PASSWORD, "clients": clients, "accounts": accounts or ACCOUNTS}
        self.process: subprocess.Popen | None = None
        self.issuer = ""

    def start(self, timeout: float = 30.0) -> OidcProvider:
        node = node_or_skip()
        fd, path = tempfile.mkstemp(suffix=".json", prefix="oidc-provider-")
        with os.fdopen(fd, "w") as f:
            json.dump(self.config, f)
        self._config_path = path
        self.process = subprocess.Popen(
            [node, str(OIDC_DIR / "server.mjs"), path],
            cwd=OIDC_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + timeout
        line = self.process.stdout.readline()  # the provider prints its issuer once it listens
        if not line:
            self.stop()
            raise RuntimeError("the OpenID provider did not start (node tests/oidc/server.mjs)")
        self.issuer = json.loads(line)["issuer"]
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the OpenID provider did not answer its discovery document")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_config_path", None):
            Path(self._config_path).unlink(missing_ok=True)


def sign_in_at_provider(authorize_url: str, login: str, *, cancel: bool = False, stop_at: str) -> str:
    """Walk the provider's pages as a browser would: its login form (or Cancel), then its consent form;
    return the URL the provider finally redirects to (it starts with `stop_at`, meter's callback)."""
    browser = requests.Session()
    url = authorize_url
    for _ in range(12):
        response = browser.get(url, allow_redirects=False, timeout=10)
        while response.status_code in (302, 303):
            url = urljoin(url, response.headers["Location"])
            if url.startswith(stop_at):
                return url
            response = browser.get(url, allow_redirects=False, timeout=10)
        assert response.status_code == 200, response.text[:500]
        page = response.text
        uid = re.search(r"/interaction/([^/\"]+)/", page).group(1)
        base = urljoin(url, "/")
        if cancel:
            response = browser.post(f"{base}interaction/{uid}/abort", allow_redirects=False, timeout=10)
        elif 'name="login"' in page:
            data = {"login": login, "password": PASSWORD}
            response = browser.post(f"{base}interaction/{uid}/login", data=data, allow_redirects=False, timeout=10)
        else:
            response = browser.post(f"{base}interaction/{uid}/confirm", allow_redirects=False, timeout=10)
        assert response.status_code in (302, 303), response.text[:500]
        url = urljoin(url, response.headers["Location"])
        if url.startswith(stop_at):
            return url
    raise AssertionError("the provider never redirected back")
