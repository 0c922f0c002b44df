"""Sign-in with other accounts, the parts that need no Node: the operator's command, the buttons and the
embed's walls, Apple and Facebook against the local STAND-IN of tests/social_standin.py (which plays
Apple's and Facebook's servers and checks what meter sends as they would; meter's code is the real
one), the failures (cancel, a state from elsewhere, a provider that is down), ID tokens for
`POST /v1/sessions` forged with the stand-in's keys, and that no secret reaches a log line.

The account rules and the flow against a real OpenID provider: tests/e2e/test_social_oidc.py.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import func, select

from meter.accounts.models import Reader, ReaderSession
from meter.dev.redis_server import free_port
from meter.platform import clock, logs
from meter.platform.db import db
from meter.sites.rules import sites
from meter.social.models import Identity, LoginProvider
from tests.conftest import Api, links_in, make_site
from tests.social_standin import StandIn

ARTICLE = "https://tempo.co/artikel/satu"


# --- fixtures and helpers ----------------------------------------------------------------------------


@pytest.fixture
def standin():
    server = StandIn().start()
    yield server
    server.stop()


@pytest.fixture
def api(app, client, standin):
    """The site tempo (and its API client), with Apple and Facebook pointed at the stand-in."""
    app.config.update(
        APPLE_ISSUER=f"{standin.base}/apple",
        FACEBOOK_DIALOG_URL=f"{standin.base}/facebook/dialog/oauth",
        FACEBOOK_GRAPH_URL=f"{standin.base}/facebook/graph",
    )
    return Api(client, make_site(app), "tempo")


@pytest.fixture
def site(api):
    return api


def add(runner, tmp_path, *args, secret="client-secret-value", secret_option="--client-secret-file"):
    path = tmp_path / f"secret-{time.monotonic_ns()}"
    path.write_text(secret + "\n")
    result = runner.invoke(args=["sites", "login-providers", "add", *args, secret_option, str(path)])
    sites.forget_cached()
    return result


@pytest.fixture
def apple(runner, tmp_path, site, standin):
    a = standin.apple
    result = add(
        runner,
        tmp_path,
        "tempo",
        "apple",
        "--kind",
        "apple",
        "--client-id",
        a["client_id"],
        "--team-id",
        a["team_id"],
        "--key-id",
        a["key_id"],
        secret=standin.apple_private_pem(),
        secret_option="--private-key-file",
    )
    assert result.exit_code == 0, result.output
    return standin


@pytest.fixture
def facebook(runner, tmp_path, site, standin):
    f = standin.facebook
    result = add(
        runner,
        tmp_path,
        "tempo",
        "facebook",
        "--kind",
        "facebook",
        "--client-id",
        f["client_id"],
        secret=f["client_secret"],
    )
    assert result.exit_code == 0, result.output
    return standin


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action, self.fields = None, {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def form_of(html: str) -> tuple[str, dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.action, parser.fields


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def start(client, provider: str, next_url: str | None = ARTICLE):
    response = client.get(f"/tempo/login/{provider}", query_string={"next": next_url} if next_url else {})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def apple_form_post(client, standin, **user):
    """The stand-in's Apple screen answers with a form that POSTs to meter's callback (form_post)."""
    standin.apple_user = {**standin.apple_user, **user}
    authorize = start(client, "apple")
    page = requests.get(authorize, timeout=5)
    action, fields = form_of(page.text)
    assert action == "http://meter.test/tempo/login/apple/callback"
    return client.post(path_of(action), data=fields)  # no CSRF token: Apple's post comes from Apple


def facebook_redirect(client, standin, **user):
    standin.facebook_user = {**standin.facebook_user, **user}
    authorize = start(client, "facebook")
    answer = requests.get(authorize, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    return client.get(path_of(answer.headers["Location"]))


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def reader_token_of(response) -> str:
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("meter_r_tempo="))
    return cookie.split(";", 1)[0].split("=", 1)[1]


# --- the operator's command ----------------------------------------------------------------------------


def test_add_list_remove_never_show_the_secret_and_seal_it(app, runner, tmp_path, site):
    secret = "very-secret-client-value-42"
    result = add(runner, tmp_path, "tempo", "g", "--kind", "google", "--client-id", "cid.apps", secret=secret)
    assert result.exit_code == 0, result.output
    assert "http://meter.test/tempo/login/g/callback" in result.output and secret not in result.output
    listed = runner.invoke(args=["sites", "login-providers", "tempo"])
    assert listed.exit_code == 0 and "g\tgoogle\tGoogle\tclient cid.apps" in listed.output
    as_json = json.loads(runner.invoke(args=["sites", "login-providers", "tempo", "--json"]).output)
    assert as_json[0]["redirect_uri"] == "http://meter.test/tempo/login/g/callback"
    assert secret not in listed.output + json.dumps(as_json)
    with app.app_context():
        stored = db.session.scalar(select(LoginProvider.secret))
    assert secret not in stored and stored.startswith("gAAAA")  # a Fernet token
    # SECRET_KEY rotated, the old one kept among the fallbacks: the provider still opens
    app.config.update(SECRET_KEY="a-new-secret-key", SECRET_KEY_FALLBACKS=["test-secret-key"])
    with app.app_context():
        from meter.social.rules import providers

        assert providers.get(sites.info_by_slug("tempo"), "g").secret == secret
    # sealed again with the new key, the old one can go
    resealed = runner.invoke(args=["sites", "login-providers", "reseal"])
    assert resealed.exit_code == 0 and "resealed 1" in resealed.output
    app.config.update(SECRET_KEY_FALLBACKS=[])
    sites.forget_cached()
    with app.app_context():
        assert providers.get(sites.info_by_slug("tempo"), "g").secret == secret
    removed = runner.invoke(args=["sites", "login-providers", "remove", "tempo", "g"])
    assert removed.exit_code == 0 and count(app, LoginProvider) == 0
    again = runner.invoke(args=["sites", "login-providers", "remove", "tempo", "g"])
    assert again.exit_code != 0 and "no sign-in provider" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "oidc", "--client-id", "x"], "--issuer is required"),
        (["--kind", "oidc", "--client-id", "x", "--issuer", "http://idp.example.com"], "must use https"),
        (["--kind", "google", "--client-id", "x", "--issuer", "https://x.example"], "for kind oidc only"),
        (["--kind", "apple", "--client-id", "x"], "--private-key-file"),
        (["--kind", "oidc", "--client-id", "x", "--issuer", "https://x.example", "--team-id", "T"], "apple only"),
    ],
)
def test_add_refuses_what_cannot_work(app, runner, tmp_path, site, args, message):
    result = add(runner, tmp_path, "tempo", "p", *args)
    assert result.exit_code != 0 and message in result.output
    assert count(app, LoginProvider) == 0


def test_apple_needs_a_real_p256_private_key(runner, tmp_path, site):
    args = ["--kind", "apple", "--client-id", "x", "--team-id", "T", "--key-id", "K"]
    result = add(runner, tmp_path, "tempo", "apple", *args, secret="not a key", secret_option="--private-key-file")
    assert result.exit_code != 0 and "Apple's private key" in result.output


def test_an_unopenable_secret_is_a_kind_page_not_a_500(app, client, facebook):
    app.config.update(SECRET_KEY="another-key-without-fallback")
    sites.forget_cached()
    response = client.get("/tempo/login/facebook")
    assert response.status_code == 503 and "tidak tersedia" in response.get_data(as_text=True)


# --- buttons and walls ---------------------------------------------------------------------------------


def test_login_and_register_pages_show_a_button_per_provider(client, apple, facebook):
    login = client.get(f"/tempo/login?next={ARTICLE}").get_data(as_text=True)
    assert "atau Masuk melalui" in login
    assert 'aria-label="Masuk melalui Apple"' in login and ">Facebook</a>" in login
    assert 'href="/tempo/login/facebook?next=https://tempo.co/artikel/satu"' in login
    register = client.get("/tempo/register?lang=en").get_data(as_text=True)
    assert "or sign up with" in register and 'aria-label="Sign up with Facebook"' in register


def test_no_providers_no_buttons(client, site):
    assert "atau Masuk melalui" not in client.get("/tempo/login").get_data(as_text=True)
    assert client.get("/tempo/login/google").status_code == 404


def test_the_embeds_walls_carry_the_provider_actions(app, client, facebook):
    def wall(cls, lang="id"):
        body = {"article": {"id": f"a-{cls}", "class": cls}, "url": ARTICLE}
        response = client.post(
            f"/embed/tempo/access?lang={lang}", data=json.dumps(body), headers={"Origin": "https://tempo.co"}
        )
        return response.get_json()["wall"]

    register = wall("metered")
    provider = register["actions"][2]
    assert provider["kind"] == "provider" and provider["label"] == "Daftar melalui Facebook"
    assert (
        provider["url"] == "http://meter.test/tempo/login/facebook?next=https%3A%2F%2Ftempo.co%2Fartikel%2Fsatu&lang=id"
    )
    subscribe = wall("premium", "en")
    assert subscribe["actions"][-1]["label"] == "Sign in with Facebook"


@pytest.mark.config(SITE_CACHE_TTL=60.0)
def test_a_provider_added_elsewhere_appears_within_the_site_cache_time(app, client, facebook):
    """Another process's `add` (here: the domain call, without this process's cache being told).

    The cache's time is meter's clock: travelled past SITE_CACHE_TTL, not waited for, so the answer
    "still cached" cannot turn stale on a busy machine (it was a 5 s cache and wall time)."""

    def labels():
        body = {"article": {"id": "a-1", "class": "metered"}}
        answer = client.post("/embed/tempo/access", data=json.dumps(body), headers={"Origin": "https://tempo.co"})
        return [a["label"] for a in answer.get_json()["wall"]["actions"]]

    assert labels()[-1] == "Daftar melalui Facebook"  # cached now
    with app.app_context():
        from meter.social.rules import providers

        row = db.session.scalar(select(LoginProvider))
        providers.add(row.site, "kantor", "oidc", "id", "secret", issuer="https://idp.example", label="Kantor")
        db.session.commit()
    assert "Daftar melalui Kantor" not in labels()  # this process's cache, filled under a minute ago
    clock.travel(timedelta(seconds=60))
    assert labels()[-1] == "Daftar melalui Kantor"


# --- Apple (stand-in): form post, client-secret JWT -------------------------------------------------------


def test_apple_form_post_signs_a_new_reader_in_verified(app, client, apple, mailbox, deliver):
    response = apple_form_post(client, apple)
    assert response.status_code == 303 and response.headers["Location"] == ARTICLE
    token = reader_token_of(response)
    with app.app_context():
        reader = db.session.scalar(select(Reader))
        identity = db.session.scalar(select(Identity))
        assert reader.email == "apple.reader@example.com" and reader.verified_at is not None
        assert (identity.provider, identity.subject, identity.email_verified) == ("apple", "001234.apple", True)
    assert deliver() == (0, 0)  # no activation mail
    assert token and ("POST", "/apple/auth/token") in apple.seen


def test_apple_refuses_a_client_secret_signed_with_the_wrong_key_id(app, client, apple):
    with app.app_context():
        db.session.execute(LoginProvider.__table__.update().values(key_id="WRONGKEY00"))
        db.session.commit()
    sites.forget_cached()
    response = apple_form_post(client, apple)
    assert response.status_code == 502 and "tidak dapat memastikan identitas Anda" in response.get_data(as_text=True)
    assert count(app, Reader) == 0


def test_apple_cancel_is_a_form_post_too(app, client, apple):
    response = apple_form_post(client, apple, cancel=True)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Proses masuk dibatalkan" in html and 'href="/tempo/login?next=https' in html
    assert count(app, Reader) == 0 and count(app, Identity) == 0


@pytest.mark.parametrize(
    "forged",
    [
        {"aud": "someone-else"},
        {"aud": "someone-else", "azp": "co.tempo.signin"},
        {"exp": int(time.time()) - 600},
        {"nonce": "not-the-nonce-meter-sent"},
        {"iss": "https://evil.example"},
    ],
    ids=["wrong-aud", "wrong-aud-our-azp", "expired", "wrong-nonce", "wrong-iss"],
)
def test_the_callback_checks_the_id_token(app, client, apple, forged):
    apple.apple_token_claims = forged
    response = apple_form_post(client, apple)
    assert response.status_code == 502 and "Gagal masuk" in response.get_data(as_text=True)
    assert count(app, Reader) == 0 and count(app, Identity) == 0


# --- Facebook (stand-in): OAuth 2 and the Graph API ------------------------------------------------------


def test_facebook_with_an_address_signs_a_new_reader_in(app, client, facebook, deliver):
    response = facebook_redirect(client, facebook)
    assert response.status_code == 303 and response.headers["Location"] == ARTICLE
    with app.app_context():
        reader = db.session.scalar(select(Reader))
        assert reader.email == "fb.reader@example.com" and reader.verified_at is not None
    assert ("GET", "/facebook/graph/me") in facebook.seen
    assert deliver() == (0, 0)


def test_facebook_without_an_address_asks_for_one_and_links_on_the_click(app, client, facebook, mailbox, deliver):
    response = facebook_redirect(client, facebook, email=None)
    assert response.status_code == 303 and response.headers["Location"].endswith("/tempo/login/facebook/address")
    page = client.get("/tempo/login/facebook/address")
    assert "Alamat email Anda" in page.get_data(as_text=True)
    _action, fields = form_of(page.get_data(as_text=True))
    sent = client.post("/tempo/login/facebook/address", data={**fields, "email": "tanpa.fb@example.com"})
    assert sent.status_code == 200 and "tanpa.fb@example.com" in sent.get_data(as_text=True)
    assert count(app, Reader) == 0 and count(app, Identity) == 0  # nothing before the click
    deliver()
    [message] = mailbox.to("tanpa.fb@example.com")
    [link] = [u for u in links_in(message["msg"]) if "/login/facebook/link/" in u]
    confirm = client.get(path_of(link))
    _action, fields = form_of(confirm.get_data(as_text=True))
    done = client.post(path_of(link), data=fields)
    assert done.status_code == 200 and "Email Anda sudah terkonfirmasi" in done.get_data(as_text=True)
    assert reader_token_of(done)
    with app.app_context():
        reader = db.session.scalar(select(Reader))
        assert reader.email == "tanpa.fb@example.com" and reader.verified_at is not None
        assert db.session.scalar(select(Identity.subject)) == "10001"
    again = client.post(path_of(link), data=fields)
    assert again.status_code == 400 and "sudah dipakai" in again.get_data(as_text=True)


def test_facebook_down_at_the_callback_is_a_page_and_nothing_is_made(app, client, facebook):
    authorize = start(client, "facebook")
    answer = requests.get(authorize, allow_redirects=False, timeout=5)
    facebook.stop()  # the token endpoint now refuses connections
    response = client.get(path_of(answer.headers["Location"]))
    assert response.status_code == 502
    assert "Kami tidak dapat menghubungi Facebook saat ini" in response.get_data(as_text=True)
    assert count(app, Reader) == 0 and count(app, Identity) == 0 and count(app, ReaderSession) == 0


def test_a_provider_that_cannot_be_reached_at_the_start(app, client, runner, tmp_path, site):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = add(runner, tmp_path, "tempo", "kantor", "--kind", "oidc", "--client-id", "x", "--issuer", closed)
    assert result.exit_code == 0
    response = client.get("/tempo/login/kantor?lang=en")
    assert response.status_code == 502 and "We could not reach kantor just now" in response.get_data(as_text=True)
    assert 'href="/tempo/login' in response.get_data(as_text=True)


def test_a_discovery_document_naming_another_issuer_is_refused(app, client, runner, tmp_path, site, standin):
    result = add(
        runner, tmp_path, "tempo", "liar", "--kind", "oidc", "--client-id", "x", "--issuer", f"{standin.base}/liar"
    )
    assert result.exit_code == 0
    for _ in range(2):  # each attempt reads the document again (a fixed one is taken), and is refused again
        response = client.get("/tempo/login/liar")
        assert response.status_code == 502 and "tidak dapat memastikan identitas Anda" in response.get_data(
            as_text=True
        )
    assert standin.seen.count(("GET", "/liar/.well-known/openid-configuration")) == 2
    assert ("GET", "/liar/auth") not in standin.seen


def test_a_state_from_another_browser_finds_nothing(app, client, facebook):
    authorize = start(client, "facebook")
    answer = requests.get(authorize, allow_redirects=False, timeout=5)
    stranger = app.test_client()  # the callback sent to someone else (a login CSRF)
    response = stranger.get(path_of(answer.headers["Location"]))
    assert response.status_code == 400 and "dimulai di browser lain" in response.get_data(as_text=True)
    assert count(app, Reader) == 0
    # and it was used up: the right browser cannot finish it afterwards either
    assert client.get(path_of(answer.headers["Location"])).status_code == 400


# --- POST /v1/sessions with an ID token (stand-in issuer) ----------------------------------------------


@pytest.fixture
def idp(app, site, runner, tmp_path, standin):
    result = add(
        runner,
        tmp_path,
        "tempo",
        "kantor",
        "--kind",
        "oidc",
        "--client-id",
        "meter-kantor",
        "--issuer",
        f"{standin.base}/oidc",
    )
    assert result.exit_code == 0, result.output
    return standin


def token_for(idp, **claims) -> str:
    base = {"email": "kantor@example.com", "email_verified": True}
    return idp.id_token(
        f"{idp.base}/oidc", claims.pop("aud", "meter-kantor"), claims.pop("sub", "k-1"), **{**base, **claims}
    )


def session_with(api, id_token: str, **extra):
    return api.post("/v1/sessions", json={"provider": "kantor", "id_token": id_token, **extra})


def test_an_id_token_signs_in_and_readers_me_lists_the_logins(app, api, idp):
    response = session_with(api, token_for(idp, nonce="n-1"), nonce="n-1")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["reader"]["state"] == "verified" and body["reader"]["email"] == "kantor@example.com"
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": body["reader_token"]}).get_json()
    assert me["logins"] == ["kantor"]
    assert (
        api.post("/v1/sessions", json={"email": "kantor@example.com", "password": "anything-at-all"}).status_code == 401
    )


def _unsigned(token: str) -> str:
    """The same claims with `alg: none` and no signature."""
    _header, payload, _sig = token.split(".")
    none = json.dumps({"alg": "none", "typ": "JWT", "kid": "standin-1"}).encode()
    return f"{base64.urlsafe_b64encode(none).rstrip(b'=').decode()}.{payload}."


@pytest.mark.parametrize(
    "case",
    [
        "wrong-aud",
        "wrong-aud-our-azp",
        "expired",
        "bad-signature",
        "alg-none",
        "hs256-with-client-secret",
        "other-issuer-key",
        "nonce",
    ],
)
def test_bad_id_tokens_are_401_id_token_invalid(app, api, idp, case):
    good = token_for(idp)
    token, extra = good, {}
    if case == "wrong-aud":
        token = token_for(idp, aud="someone-else")
    elif case == "wrong-aud-our-azp":  # Authlib alone would take it: it checks azp, not aud
        token = token_for(idp, aud="someone-else", azp="meter-kantor")
    elif case == "expired":
        token = token_for(idp, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    elif case == "bad-signature":
        header, payload, sig = good.split(".")
        flipped = ("A" if sig[10] != "A" else "B").join((sig[:10], sig[11:]))
        token = f"{header}.{payload}.{flipped}"
    elif case == "alg-none":
        token = _unsigned(good)
    elif case == "hs256-with-client-secret":
        claims = jwt.decode(good, idp.signing).claims
        token = jwt.encode({"alg": "HS256", "kid": "standin-1"}, claims, OctKey.import_key("client-secret-value"))
    elif case == "other-issuer-key":
        stranger = RSAKey.generate_key(2048, parameters={"kid": "standin-1"})
        token = jwt.encode({"alg": "RS256", "kid": "standin-1"}, jwt.decode(good, idp.signing).claims, stranger)
    elif case == "nonce":
        token, extra = token_for(idp, nonce="theirs"), {"nonce": "ours"}
    response = session_with(api, token, **extra)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["type"].endswith("/problems/id-token-invalid")
    assert count(app, Reader) == 0


def test_keys_are_fetched_again_for_an_unknown_kid(app, api, idp):
    assert session_with(api, token_for(idp)).status_code == 200  # the keys are cached now
    idp.signing = RSAKey.generate_key(2048, parameters={"kid": "standin-2", "use": "sig", "alg": "RS256"})
    response = session_with(
        api, idp.id_token(f"{idp.base}/oidc", "meter-kantor", "k-2", email="b@example.com", email_verified=True)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [p for m, p in idp.seen if p == "/oidc/jwks"] == ["/oidc/jwks", "/oidc/jwks"]
    # forged kids cannot make meter fetch the keys on every request: at most once a minute
    for n in range(3):
        forged = RSAKey.generate_key(2048, parameters={"kid": f"forged-{n}"})
        claims = {"iss": f"{idp.base}/oidc", "aud": "meter-kantor", "sub": "x", "iat": int(time.time())}
        token = jwt.encode({"alg": "RS256", "kid": f"forged-{n}"}, {**claims, "exp": int(time.time()) + 60}, forged)
        assert session_with(api, token).status_code == 401
    assert len([p for m, p in idp.seen if p == "/oidc/jwks"]) == 2


def test_an_id_token_without_a_verified_address_or_from_an_unknown_provider(app, api, idp, facebook):
    unverified = session_with(api, token_for(idp, email_verified=False))
    assert unverified.status_code == 422 and unverified.get_json()["type"].endswith("/address-required")
    unknown = api.post("/v1/sessions", json={"provider": "nope", "id_token": token_for(idp)})
    assert unknown.status_code == 422 and "provider" in unknown.get_json()["errors"]
    not_openid = api.post("/v1/sessions", json={"provider": "facebook", "id_token": token_for(idp)})
    assert not_openid.status_code == 422
    assert count(app, Reader) == 0


# --- logs and metrics ---------------------------------------------------------------------------------------


def test_no_code_token_or_secret_reaches_a_log_line(app, client, facebook, apple):
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        facebook_redirect(client, facebook)
        authorize = start(client, "facebook")
        code_answer = requests.get(authorize, allow_redirects=False, timeout=5)
        callback = code_answer.headers["Location"]
        client.get(path_of(callback))
        client.get(path_of(callback))  # a replay: a failure, logged
        apple_form_post(client, apple)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    query = parse_qs(urlsplit(callback).query)
    secrets_seen = [query["code"][0], query["state"][0], facebook.facebook["client_secret"], *facebook.tokens]
    text = "\n".join(lines)
    assert lines and "sign-in with facebook failed: state" in text
    for secret in secrets_seen:
        assert secret not in text
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text)  # no JWT (ID token, Apple's client secret)


def test_metrics_count_sign_ins_registrations_and_failures_by_provider(app, client, facebook):
    def scraped() -> dict[str, float]:
        text = client.get("/metrics").get_data(as_text=True)
        wanted = {
            "signins": 'meter_signins_total{method="facebook",site="tempo"} ',
            "registrations": 'meter_social_registrations_total{provider="facebook",site="tempo"} ',
            "cancelled": 'meter_social_failures_total{kind="cancelled",provider="facebook",site="tempo"} ',
        }
        found = {}
        for name, prefix in wanted.items():
            line = next((ln for ln in text.splitlines() if ln.startswith(prefix)), prefix + "0")
            found[name] = float(line.rsplit(" ", 1)[1])
        return found

    before = scraped()  # the counters live in this process, across tests
    facebook_redirect(client, facebook)
    facebook_redirect(client, facebook)  # known identity: a sign-in, not a registration
    facebook_redirect(client, facebook, cancel=True)
    after = scraped()
    assert {k: after[k] - before[k] for k in after} == {"signins": 2, "registrations": 1, "cancelled": 1}


def test_mask_hides_oauth_values():
    line = logs.mask('GET /cb?code=abc123&state=xyz {"access_token": "t0k", "client_secret": "s3"} code_verifier: v')
    for secret in ("abc123", "xyz", "t0k", "s3", " v"):
        assert secret not in line.replace("[masked]", "")


def test_an_amp_reader_id_is_linked_as_after_a_login(app, client, facebook, redis_client):
    """Only when AMP's login flow started the sign-in (its `return`): a `?rid=` alone links nothing."""
    from meter.access.rules import amp_readers

    amp_return = "https://cdn.ampproject.org/v0/amp-login-done-0.1.html"
    for rid, query in (("amp-someone-else-0123", ""), ("amp-reader-0123456789", f"&return={amp_return}")):
        authorize = client.get(f"/tempo/login/facebook?next={ARTICLE}&rid={rid}{query}").headers["Location"]
        answer = requests.get(authorize, allow_redirects=False, timeout=5)
        response = client.get(path_of(answer.headers["Location"]))
        assert response.status_code == 303
        assert response.headers["Location"] == (amp_return + "#success=true" if query else ARTICLE)
    with app.app_context():
        site_id = sites.info_by_slug("tempo").id
        unlinked = redis_client.get(amp_readers.key(site_id, "amp-someone-else-0123"))
        linked = redis_client.get(amp_readers.key(site_id, "amp-reader-0123456789"))
        reader_id = db.session.scalar(select(Reader.id))
    assert unlinked is None
    assert linked is not None and linked.startswith(f"{reader_id}:amp-")


def test_bad_input_on_the_sign_in_pages_is_never_a_500(app, client, facebook, apple):
    cases = [
        ("GET", "/tempo/login/facebook/callback", {}, 400),
        ("GET", "/tempo/login/facebook/callback?state=&code=", {}, 400),
        ("GET", "/tempo/login/facebook/callback?state=" + "x" * 5000, {}, 400),
        ("GET", "/tempo/login/facebook/callback?error=server_error&state=nope", {}, 502),
        (
            "POST",
            "/tempo/login/apple/callback",
            {"data": b"\xff\xfe", "content_type": "application/x-www-form-urlencoded"},
            400,
        ),
        ("POST", "/tempo/login/apple/callback", {"json": {"code": "x", "state": "y"}}, 400),
        ("GET", "/tempo/login/apple/callback?code=x&state=y&iss=https://evil.example", {}, 400),
        ("GET", "/tempo/login/facebook/link/not-a-token", {}, 400),
        ("GET", "/tempo/login/facebook/address", {}, 303),
        ("POST", "/tempo/login/facebook/address", {"data": {"email": "a@example.com"}}, 400),  # no CSRF token
        ("GET", "/tempo/login/FACEBOOK", {}, 404),
        ("GET", "/tempo/login/" + "a" * 40, {}, 404),
        ("GET", "/tempo/login/facebook?next=javascript:alert(1)&rid=../../x", {}, 302),
        ("GET", "/nosuchsite/login/facebook", {}, 404),
    ]
    for method, path, kw, status in cases:
        response = client.open(path, method=method, **kw)
        assert response.status_code == status, (method, path, response.status_code)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Reader)) == 0
    link = client.post("/tempo/login/facebook/link/not-a-token", data={})
    assert link.status_code == 400  # no CSRF token: refused before anything is read


def test_a_visitor_signing_up_with_a_provider_keeps_their_experiments_variant(app, api, idp, runner):
    """The new reader is in the variant their anonymous id had, and is counted in it as a registration."""
    experiment = {
        "name": "q1",
        "start": "2020-01-01",
        "end": "2099-01-01",
        "variants": {"a": {"share": 50}, "b": {"share": 50, "quota": {"verified": 9}}},
    }
    set_it = runner.invoke(args=["sites", "policy", "tempo", "--set", f"experiment={json.dumps(experiment)}"])
    assert set_it.exit_code == 0, set_it.output

    def variant(**who) -> str:
        body = {"article": {"id": "probe"}, "record": False, **who}
        return api.post("/v1/access", json=body).get_json()["meter"]["variant"]

    visitor = next(f"visitor-{n:04d}" for n in range(100) if variant(anonymous_id=f"visitor-{n:04d}") == "b")
    body = session_with(api, token_for(idp, nonce="n-1"), nonce="n-1", anonymous_id=visitor).get_json()
    assert variant(reader_token=body["reader_token"]) == "b"
    stats = api.get("/v1/stats").get_json()
    (figures,) = stats["experiments"]
    counted = {v["name"]: (v["registrations"], v["activations"]) for v in figures["variants"]}
    today = stats["days"][-1]
    # As in the day's figures: a registration, and no activation (the provider's address is verified at once).
    assert counted == {"a": (0, 0), "b": (today["registrations"], today["activations"])} == {"a": (0, 0), "b": (1, 0)}
