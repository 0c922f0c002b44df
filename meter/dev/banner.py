"""What a newcomer reads when `make run` is ready: the pieces it started, the demo key, and curl lines
to paste. The example article is the demo site's Koran story (metered): its NATO story is free and
would never be refused."""

from __future__ import annotations

import json
import os
import shlex
from urllib.parse import urlsplit

DEMO_SLUG = "demo"
KEY_FILE = "demo-api-key"
ARTICLE = '"article": {"id": "demo:koran:2026-01-31:beras", "class": "metered"}'  # the demo's koran-harga-beras


def curl(base: str, path: str, key: str, body: str) -> str:
    return (
        f"curl -s -X POST {base}{path} -H {shlex.quote('Authorization: Bearer ' + key)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}; echo"
    )


def banner(base: str, key: str, lines: list[str], instance: str) -> str:
    bar = "=" * 78
    email, password = "pembaca@example.com", "rahasia-sekali"
    register = json.dumps({"email": email, "password": password})
    login = json.dumps({"email": email, "password": password})
    login_cmd = curl(base, "/v1/sessions", key, login).removesuffix("; echo")
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"reader_token\"])'"
    reader_body = '{"reader_token": "\'"$READER_TOKEN"\'", ' + ARTICLE + "}"
    reader_access = (
        f"curl -s -X POST {base}/v1/access -H {shlex.quote('Authorization: Bearer ' + key)} "
        f"-H 'Content-Type: application/json' -d '{reader_body}'; echo"
    )
    anonymous = curl(base, "/v1/access", key, '{"anonymous_id": "visitor-0001", ' + ARTICLE + "}")
    pid_file = os.path.join(instance, "devserver.pid")
    return "\n".join(
        [
            bar,
            f"meter is ready on {base}   (Ctrl-C stops everything it started)",
            f"Demo publisher site (articles using the embed): {base}/demo-site/  (English: ?lang=en)",
            "",
            *lines,
            f"  {'data':<12} {instance} (kept between runs; delete it to start afresh)",
            f"  {'stop':<12} Ctrl-C here, or from a script: kill -INT $(cat {pid_file})",
            "",
            f"Demo site: {DEMO_SLUG}. Its API key (kept in {os.path.join(instance, KEY_FILE)}):",
            "",
            f"    {key}",
            "",
            "Try it from another terminal:",
            "",
            "# 1. register a reader (202); the activation mail is printed here, open its link",
            curl(base, "/v1/readers", key, register),
            "",
            "# 2. once activated, log in and keep the reader token",
            f"READER_TOKEN=$({login_cmd} | {extract})",
            "",
            "# 3. may this reader read this metered article? (2 free a month once verified)",
            reader_access,
            "",
            "# the same question for an anonymous visitor: refused, registration_required",
            anonymous,
            "",
            "# the operator's commands on this data: METER_ENV=development bin/meter --help",
            bar,
            "",
        ]
    )


def masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
