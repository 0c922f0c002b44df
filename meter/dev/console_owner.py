"""`make run`'s console owner of the demo site: made once, with its set-up link in the banner.

The devserver calls `banner_lines` after the demo site exists. An owner who has not finished set-up
gets a fresh link on every start (the previous one dies); once set up, the banner says where to sign
in, and `flask demo traffic --days 30` fills the dashboard.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

OWNER = "pemilik@demo.example.com"
SITE = "demo"

Run = Callable[..., subprocess.CompletedProcess]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def banner_lines(run: Run, env: dict[str, str], base: str) -> list[str]:
    """Lines for the banner; `run(env, *args)` runs a `flask` command (the devserver's `flask_command`)."""
    listed = run(env, "staff", "list", "--json")
    if listed.returncode != 0:
        return [f"  {'console':<12} could not list staff: {(listed.stderr or listed.stdout).strip()[:200]}"]
    members = {row["email"]: row for row in json.loads(_last_line(listed.stdout) or "[]")}
    owner = members.get(OWNER)
    if owner is not None and owner["state"] == "active":
        return [
            f"  {'console':<12} {base}/console/  (owner {OWNER}; figures: METER_ENV=development .venv/bin/flask --app wsgi demo traffic --days 30)",
        ]
    made = run(env, "staff", "create", OWNER, "--site", SITE, "--role", "owner")
    if made.returncode != 0:
        return [f"  {'console':<12} could not make the demo owner: {(made.stderr or made.stdout).strip()[:200]}"]
    return [
        f"  {'console':<12} {base}/console/ : set up the demo site's owner {OWNER} (password and authenticator app)",
        f"  {'':<12} {_last_line(made.stdout)}",
        f"  {'':<12} then the figures: METER_ENV=development .venv/bin/flask --app wsgi demo traffic --days 30",
    ]
