"""The examples of docs/api.md, run as written against a real gunicorn: the curl lines with bash, the
Python with requests, the PHP with php-cli and its curl extension (skipped, saying so, where there is
no php). Only the server's address is replaced; their names for what the page around them provides
(a reader token, a wall to show) are given stand-ins."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import requests

from meter import create_app
from meter.access.rules import article_signing
from meter.platform.db import db
from tests.conftest import _config_dict, clear_database, empty_database, flush_redis, make_site
from tests.paths import ROOT_DIR
from tests.servers import Gunicorn, server_env

pytestmark = [
    pytest.mark.database_agnostic,
    pytest.mark.servers,
    pytest.mark.timeout(120),
    pytest.mark.xdist_group("docs_examples"),
]
ROOT = ROOT_DIR
DOC = (ROOT / "docs" / "api.md").read_text()
SOCIAL_DOC = (ROOT / "docs" / "social-login.md").read_text()
DOCUMENTED_BASE = "http://127.0.0.1:5000"


def blocks(lang: str, containing: str = "") -> list[str]:
    return [b for b in re.findall(rf"```{lang}\n(.*?)```", DOC, re.S) if containing in b]


def one(lang: str, containing: str) -> str:
    [block] = blocks(lang, containing)
    return block


def documents(text: str) -> list[dict]:
    """The JSON documents printed one after another (curl -s prints no newline between them)."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        document, i = decoder.raw_decode(text, i)
        found.append(document)
    return found


@pytest.fixture(scope="module")
def gunicorn(sqlite_dir, database_template, redis_url, tmp_path_factory):
    """One gunicorn for the module; each test empties its database first (`served`)."""
    with empty_database(sqlite_dir, database_template) as url:
        log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
        # a policy changed by an example's command reaches the server at once, not after SITE_CACHE_TTL
        server = Gunicorn(server_env(url, redis_url, SITE_CACHE_TTL="0"), workers=1, log=log)
        server.env["PUBLIC_BASE_URL"] = server.url  # the grants' `iss`, which the examples check
        server.start()
        try:
            yield server, url
        finally:
            server.stop()


@pytest.fixture
def served(gunicorn, redis_url, tmp_path):
    """The demo site of `make run` on a real gunicorn with nothing else in it, its key in
    instance/demo-api-key (the examples read it there)."""
    server, url = gunicorn
    clear_database(url)
    flush_redis(redis_url)
    app = create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    key = make_site(app, "demo", origins=(DOCUMENTED_BASE,))
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "demo-api-key").write_text(key + "\n")
    yield server, tmp_path
    with app.app_context():
        db.engine.dispose()


def subscriber(server: Gunicorn, key: str) -> str:
    """A reader token of a subscriber of the demo site (registered, logged in, subscribed by the API)."""
    auth = {"Authorization": f"Bearer {key}"}
    who = {"email": "langganan@example.com", "password": "rahasia-sekali"}
    assert requests.post(f"{server.url}/v1/readers", json=who, headers=auth, timeout=10).status_code == 202
    token = requests.post(f"{server.url}/v1/sessions", json=who, headers=auth, timeout=10).json()["reader_token"]
    me = requests.get(f"{server.url}/v1/readers/me", headers={**auth, "X-Reader-Token": token}, timeout=10).json()
    until = {"until": "2099-12-31T00:00:00+00:00"}
    subscribed = requests.put(
        f"{server.url}/v1/readers/{me['reader_id']}/subscription", json=until, headers=auth, timeout=10
    )
    assert subscribed.status_code == 200, subscribed.text
    return token


def operator(block: str, gunicorn_env: dict[str, str]) -> None:
    """An operator's command of the docs (`METER_ENV=development bin/meter …`), run as written from the
    checkout, on the test server's database and Redis (set in the environment, which wins)."""
    out = subprocess.run(["bash", "-c", block], cwd=ROOT, env=gunicorn_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def here(code: str, server: Gunicorn) -> str:
    return code.replace(f'"{DOCUMENTED_BASE}"', f'"{server.url}"').replace(f"={DOCUMENTED_BASE}\n", f"={server.url}\n")


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="no curl or bash")
def test_the_curl_examples(served):
    server, cwd = served
    script = "\n".join(
        [
            here(one("sh", "BASE="), server),
            one("sh", "/v1/readers \\"),  # register, log in, who am I
            'echo; echo "token: ${READER_TOKEN:0:3}"',
            one("sh", "/v1/access \\"),
            one("sh", "/subscription"),
        ]
    )
    out = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    registered, me, access, subscribed, *_ = documents(out.stdout)
    assert registered == {"status": "activation_sent"}
    assert me["email"] == "pembaca@example.com" and me["state"] == "registered"
    assert "token: rt_" in out.stdout or ("token: " in out.stdout and access["reader"]["token"] == "valid")
    assert access["reader"]["token"] == "valid" and access["reason"] == "verification_required"
    assert subscribed["subscription_until"].startswith("2026-12-31T17:00:00")


def test_the_python_examples(served, monkeypatch):
    server, cwd = served
    monkeypatch.chdir(cwd)
    register = {"email": "pembaca@example.com", "password": "rahasia-sekali"}
    key = (cwd / "instance" / "demo-api-key").read_text().strip()
    assert requests.post(f"{server.url}/v1/readers", json=register, headers={"Authorization": f"Bearer {key}"}).ok
    flashed, walls = [], []
    names = {
        "email": "pembaca@example.com",
        "password": "rahasia-sekali",
        "visitor_cookie": "visitor-0001",
        "flash": flashed.append,
        "show_wall": lambda *shown: walls.append(shown),
        "KID": "k1",
        "SECRET": "s" * 32,
    }
    exec(here(one("python", "requests.Session()"), server), names)
    exec(one("python", "/v1/sessions"), names)
    assert flashed == [] and names["reader_token"]
    exec(one("python", "show_wall("), names)
    assert names["answer"]["reason"] == "verification_required" and walls == [
        ("verification_required", names["answer"]["meter"])
    ]
    exec(one("python", "def meter_sig"), names)
    assert names["sig"].startswith("v1.k1.") and "=" not in names["sig"]
    # The documented signature is meter's, with a section, a campaign, both and neither.
    for section, campaign in ((None, None), ("koran", None), (None, "ramadan"), ("koran", "ramadan")):
        mine = names["meter_sig"]("k1", "s" * 32, "tempo:koran:1", "metered", 1900000000, section, campaign)
        assert mine == article_signing.sign("k1", "s" * 32, "tempo:koran:1", "metered", 1900000000, section, campaign)


@pytest.mark.skipif(
    shutil.which("php") is None, reason="no php-cli (apt-get install php-cli php-curl) to run the PHP examples"
)
def test_the_php_examples(served):
    server, cwd = served
    key = (cwd / "instance" / "demo-api-key").read_text().strip()
    register = {"email": "pembaca@example.com", "password": "rahasia-sekali"}
    assert requests.post(f"{server.url}/v1/readers", json=register, headers={"Authorization": f"Bearer {key}"}).ok
    setup = here(one("php", "function meter("), server)
    script = "\n".join(
        [
            setup,
            '$email = "pembaca@example.com"; $password = "rahasia-sekali"; $_SESSION = []; $walls = [];',
            "function show_wall($reason) { global $walls; $walls[] = $reason; }",
            one("php", '"/v1/sessions"'),
            "$readerToken = $_SESSION['reader_token'];",
            one("php", "show_wall("),
            one("php", "function meter_sig"),
            'echo json_encode(["me" => $me, "access" => $answer, "walls" => $walls,'
            ' "sig" => meter_sig("k1", str_repeat("s", 32), "tempo:koran:2026-01-31:beras", "metered", 1900000000),'
            ' "sectioned" => meter_sig("k1", str_repeat("s", 32), "tempo:koran:1", "metered", 1900000000, "koran"),'
            ' "campaign" => meter_sig("k1", str_repeat("s", 32), "tempo:koran:1", "metered", 1900000000, null,'
            ' "ramadan")]);',
        ]
    )
    out = subprocess.run(["php"], input=script, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["me"]["email"] == "pembaca@example.com"
    assert result["access"]["reason"] == "verification_required" and result["walls"] == ["verification_required"]
    names: dict = {}
    exec(one("python", "def meter_sig"), {"KID": "k1", "SECRET": "s" * 32} | names)
    python_sig = {}
    exec(
        one("python", "def meter_sig").split("expires =")[0]
        + 'sig = meter_sig("k1", "s" * 32, "tempo:koran:2026-01-31:beras", "metered", 1900000000)',
        python_sig,
    )
    assert result["sig"] == python_sig["sig"]  # the PHP and the Python signatures agree
    assert result["sectioned"] == article_signing.sign("k1", "s" * 32, "tempo:koran:1", "metered", 1900000000, "koran")
    campaign = article_signing.sign("k1", "s" * 32, "tempo:koran:1", "metered", 1900000000, None, "ramadan")
    assert result["campaign"] == campaign


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="no curl or bash")
def test_the_crawler_example(served, redis_url):
    """The policy line turns crawlers on for the site the example then asks about; the answer is the one shown."""
    server, cwd = served
    operator(one("sh", "--set crawlers=verified"), server.env)
    script = "\n".join([here(one("sh", "BASE="), server), one("sh", "Googlebot/2.1")])
    out = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [answer] = documents(out.stdout)
    assert (answer["allowed"], answer["reason"]) == (True, "crawler")


def test_the_gift_examples(served, monkeypatch):
    """The policy line turns gifts on; a subscriber gives the article (Python); a visitor opens it."""
    server, cwd = served
    operator(one("sh", "--set gifts.per_period="), server.env)
    monkeypatch.chdir(cwd)
    key = (cwd / "instance" / "demo-api-key").read_text().strip()
    shared: list[str] = []
    names: dict = {
        "subscriber_token": subscriber(server, key),
        "share": shared.append,
        "visitor_cookie": "visitor-0002",
    }
    exec(here(one("python", "requests.Session()"), server), names)  # BASE, KEY, meter
    code = one("python", "subscriber_token")
    before, after = code.split('# later, the friend\'s visit (request.args["gift"] on your page):', 1)
    exec(before, names)
    [url] = shared
    assert url.startswith(DOCUMENTED_BASE + "/demo-site/koran-harga-beras?gift=")
    gift = url.split("gift=", 1)[1]
    names["request"] = type("Request", (), {"args": {"gift": gift}})
    exec(after, names)
    assert (names["answer"]["allowed"], names["answer"]["reason"]) == (True, "gift")


def test_the_local_sign_in_example_of_social_login(served):
    """docs/social-login.md's "Try it locally": the demo site's Akun Demo, listed with its redirect URI."""
    server, _cwd = served
    [block] = [b for b in re.findall(r"```sh\n(.*?)```", SOCIAL_DOC, re.S) if "login-providers demo" in b]
    add = (
        "printf 'demo-secret' > \"$TMPDIR/secret\" && METER_ENV=development bin/meter sites login-providers add demo"
        ' akun-demo --kind oidc --issuer http://127.0.0.1:9 --client-id meter-demo --client-secret-file "$TMPDIR/secret"'
        ' --label "Akun Demo"'
    )
    env = {**server.env, "TMPDIR": str(_cwd)}
    operator(add, env)  # what make run does at each start
    out = subprocess.run(["bash", "-c", block], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(
        r"^akun-demo\toidc\tAkun Demo\tclient meter-demo\t.*redirect URI \S+/demo/login/akun-demo/callback$",
        out.stdout,
        re.M,
    )


ARTICLE = "demo:koran:2026-01-31:beras"


@pytest.fixture
def granted(served, gunicorn, redis_url):
    server, cwd = served
    app = create_app({**_config_dict(), "SQLALCHEMY_DATABASE_URI": gunicorn[1], "REDIS_URL": redis_url})
    assert app.test_cli_runner().invoke(args=["sites", "grant-keys", "create", "demo"]).exit_code == 0
    with app.app_context():
        db.engine.dispose()
    key = (cwd / "instance" / "demo-api-key").read_text().strip()

    def grant(article_id: str) -> str:
        body = {"article": {"id": article_id, "class": "free"}, "grant": True}
        answer = requests.post(f"{server.url}/v1/access", json=body, headers={"Authorization": f"Bearer {key}"})
        return answer.json()["grant"]

    return server, cwd, grant(ARTICLE), grant("demo:other")


def test_the_python_grant_example(granted):
    server, _cwd, good, other = granted
    names: dict = {}
    exec(here(one("python", "PyJWKClient"), server), names)
    allows = names["grant_allows"]
    assert allows(f"Bearer {good}", ARTICLE)
    assert not allows(f"Bearer {other}", ARTICLE) and not allows(good, ARTICLE) and not allows("Bearer x.y.z", ARTICLE)


@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="no node and npm")
def test_the_node_grant_example(granted, tmp_path_factory):
    server, _cwd, good, other = granted
    where = tmp_path_factory.getbasetemp() / "node-jose"
    if not (where / "node_modules" / "jose").is_dir():
        where.mkdir(exist_ok=True)
        installed = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(where), "jose@6.2.19"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm could not install jose: {installed.stderr[-300:]}")
    script = where / "grant.mjs"
    script.write_text(
        here(one("js", "jwtVerify"), server)
        + f"\nconsole.log(JSON.stringify([await grantAllows({json.dumps('Bearer ' + good)}, {json.dumps(ARTICLE)}),"
        + f" await grantAllows({json.dumps('Bearer ' + other)}, {json.dumps(ARTICLE)}),"
        + f" await grantAllows({json.dumps(good)}, {json.dumps(ARTICLE)})]));\n"
    )
    out = subprocess.run(["node", str(script)], cwd=where, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, False, False]


@pytest.mark.skipif(shutil.which("php") is None, reason="no php-cli to run the PHP examples")
def test_the_php_grant_example(granted, tmp_path):
    server, cwd, good, other = granted
    probe = subprocess.run(
        ["php", "-r", "echo function_exists('sodium_crypto_sign_verify_detached') ? 1 : 0;"],
        capture_output=True,
        text=True,
    )
    if probe.stdout != "1":
        pytest.skip("php has no ext-sodium")
    script = (
        "<?php\n"
        + here(one("php", "function meter_grant_allows"), server)
        + (
            f"\necho json_encode([meter_grant_allows({json.dumps('Bearer ' + good)}, {json.dumps(ARTICLE)}),"
            f" meter_grant_allows({json.dumps('Bearer ' + other)}, {json.dumps(ARTICLE)}),"
            f" meter_grant_allows({json.dumps('Bearer ' + good + 'x')}, {json.dumps(ARTICLE)})]);"
        )
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its own cache of the set
    out = subprocess.run(["php"], input=script, cwd=cwd, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout) == [True, False, False]
