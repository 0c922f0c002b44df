"""`make run`'s "Akun Demo": the project's own OpenID provider, registered as the demo site's sign-in provider.

The provider is the one the tests use (tests/oidc/server.mjs: panva's certified oidc-provider on Node,
installed from its lock file by `make oidc`, which `make run` runs first). With it the login page, the
register page and the walls of the demo site show "atau Masuk melalui Akun Demo" out of the box, and
its two accounts try both of meter's account rules: one whose provider vouches for its address (signed
in at once, verified) and one without any address (meter asks for one and mails a link).

It listens on loopback only, on a free port; each start registers it again (`flask sites
login-providers add`, which replaces the provider of that name), so its issuer is always the one
running. Without Node (or its packages) nothing starts, a provider registered by an earlier run is
removed (a button to a provider that does not answer would be a dead end), and the banner says how
to get Node. The client secret is made once and kept in instance/ (mode 600), like the demo API key.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
import urllib.error
import urllib.request

from meter.dev.processes import HOST, REPO, Child, check, flask_command, say, spawn, stop_child
from meter.dev.redis_server import free_port

OIDC_DIR = REPO / "tests" / "oidc"
NAME = "akun-demo"  # in the URLs: /demo/login/akun-demo
LABEL = "Akun Demo"
CLIENT_ID = "meter-demo"
PASSWORD = "demo"
SECRET_FILE = "demo-oidc-secret"
CONFIG_FILE = "demo-oidc.json"
# login: what the provider says of it (its claims). One vouches for its address; one has none at all.
ACCOUNTS = {
    "vera": {"email": "vera@demo.example.com", "email_verified": True, "name": "Vera Demo"},
    "nora": {"name": "Nora Demo"},
}
GET_NODE = (
    'Node.js is not installed, so the demo site has no "Masuk melalui Akun Demo": install Node 18 or later '
    "(Debian/Ubuntu: apt-get install nodejs npm; else https://nodejs.org), then `make run` again"
)


def unavailable() -> str | None:
    """Why the provider cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return GET_NODE
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return "tests/oidc is not installed (`make oidc`, which `make run` runs, does it: npm ci from its lock file)"
    return None


def _private_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def client_secret(instance: str) -> str:
    path = os.path.join(instance, SECRET_FILE)
    try:
        with open(path) as f:
            secret = f.read().strip()
        if secret:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(24)
    _private_file(path, secret + "\n")
    return secret


def config(instance: str, port: int, redirect_uris: list[str]) -> dict:
    """What tests/oidc/server.mjs reads: one confidential client (meter), the demo accounts, a hint."""
    logins = ", ".join(ACCOUNTS)
    return {
        "port": port,
        "password": PASSWORD,
        "accounts": ACCOUNTS,
        "hint": f"Demo accounts: {logins}; password: {PASSWORD}",
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": client_secret(instance),
                "redirect_uris": redirect_uris,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ],
    }


def _answers(issuer: str) -> bool:
    try:
        url = f"{issuer}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own loopback provider
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(instance: str, origins: list[str], site: str, env: dict[str, str]) -> tuple[Child | None, list[str]]:
    """Start the provider and register it on `site`; (its child process or None, the banner's lines)."""
    why = unavailable()
    if why is not None:
        forget(env, site)
        return None, [f"  {'sign-in':<12} {why}"]
    port = free_port()
    issuer = f"http://{HOST}:{port}"
    path = os.path.join(instance, CONFIG_FILE)
    callbacks = [f"{origin}/{site}/login/{NAME}/callback" for origin in origins]
    _private_file(path, json.dumps(config(instance, port, callbacks)))
    say(f"starting the demo OpenID provider (node tests/oidc/server.mjs) on {issuer}")
    child = spawn("oidc", [shutil.which("node") or "node", str(OIDC_DIR / "server.mjs"), path], env, "35")
    deadline = time.monotonic() + 20
    while not _answers(issuer):
        if child.process.poll() is not None or time.monotonic() > deadline:
            say("the demo OpenID provider did not start; see its output above. The demo site goes without it.")
            stop_child(child)
            forget(env, site)
            return None, [f"  {'sign-in':<12} the demo OpenID provider did not start (see its output above)"]
        time.sleep(0.1)
    secret_file = os.path.join(instance, SECRET_FILE)
    args = ["sites", "login-providers", "add", site, NAME, "--kind", "oidc", "--issuer", issuer]
    check(
        flask_command(env, *args, "--client-id", CLIENT_ID, "--client-secret-file", secret_file, "--label", LABEL),
        "flask sites login-providers add",
    )
    accounts = f"{', '.join(ACCOUNTS)} (password {PASSWORD}): vera's address is verified, nora has none"
    return child, [
        f'  {"sign-in":<12} "Masuk melalui {LABEL}": the demo OpenID provider on {issuer} (pid {child.process.pid})',
        f"  {'':<12} its accounts {accounts}",
    ]


def forget(env: dict[str, str], site: str) -> None:
    """Remove the provider an earlier run registered, if any (quietly: it may well not be there)."""
    listed = flask_command(env, "sites", "login-providers", site, "--json")
    lines = listed.stdout.strip().splitlines()
    if listed.returncode != 0 or not lines:
        return
    if any(row.get("name") == NAME for row in json.loads(lines[-1])):
        say(f"removing the demo site's {LABEL} provider of an earlier run: Node is not here to run it")
        flask_command(env, "sites", "login-providers", "remove", site, NAME)
