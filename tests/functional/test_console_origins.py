"""What a site is configured with, checked in one place for the console and the command line alike:
an origin is scheme://host[:port] and nothing else (meter.platform.hosts), and a sign-in provider's
issuer is never a host of the operator's own network outside development (SOCIAL_PRIVATE_ISSUERS)."""

from __future__ import annotations

import json

import pytest

from tests.console_helpers import csrf_of, staff_client

BAD_ORIGINS = [
    "http://ex ample.com",
    "https://ex\tample.com",
    " https://tempo.co /",
    "https://user@tempo.co",
    "https://user:secret@tempo.co",
    "https://tempo.co/path",
    "https://tempo.co/?x=1",
    "https://tempo.co#top",
    "https://tempo.co:",
    "https://tempo.co:99999",
    "https://-tempo.co",
    "https://tempo..co",
    "https://tem_po.co",
    "https://" + "a" * 64 + ".co",
    "https://127.1",
    "https://tempo.co\\@evil.example",
    "https:///tempo.co",
    "https://[::1",
    "javascript:alert(1)",
    "ftp://tempo.co",
    "https://",
]
GOOD_ORIGINS = {
    "https://Koran.Tempo.co": "https://koran.tempo.co",
    "https://koran.tempo.co/": "https://koran.tempo.co",
    "https://koran.tempo.co:443": "https://koran.tempo.co",
    "https://bücher.example": "https://xn--bcher-kva.example",
    "http://127.0.0.1:8000": "http://127.0.0.1:8000",
    "http://[::1]:5000": "http://[::1]:5000",
    "http://localhost:5000": "http://localhost:5000",
}


def _post(client, url: str, **data):
    token = csrf_of(client.get("/console/tempo/origins").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


@pytest.fixture
def owner(app, runner, api):
    return staff_client(app, runner, "own@tempo.co", "tempo", "owner")


def _origins(runner) -> list[str]:
    result = runner.invoke(args=["sites", "list", "--json"])
    return next(site["origins"] for site in json.loads(result.output) if site["slug"] == "tempo")


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_the_console_refuses_what_is_not_an_origin(owner, runner, origin):
    answer = _post(owner, "/console/tempo/origins", origin=origin)
    assert answer.status_code == 422 and 'id="origin-error"' in answer.get_data(as_text=True), origin
    assert _origins(runner) == ["https://tempo.co"]


@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_the_command_line_refuses_what_is_not_an_origin(runner, origin):
    result = runner.invoke(args=["sites", "create", "news", "--name", "News", "--origin", origin])
    assert result.exit_code not in (0, None) and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "origin" in lines[0], result.output


def test_origins_are_kept_as_the_browser_sends_them(owner, runner):
    for given, kept in GOOD_ORIGINS.items():
        assert _post(owner, "/console/tempo/origins", origin=given).status_code == 303, given
        assert kept in _origins(runner)
    created = runner.invoke(args=["sites", "create", "news", "--name", "News", "--origin", "https://Bücher.example/"])
    assert created.exit_code == 0 and "https://xn--bcher-kva.example" in created.output


# --- the issuer of a sign-in provider ----------------------------------------------------------------

INTERNAL_ISSUERS = [
    "https://localhost",
    "https://idp.localhost",
    "https://127.0.0.1:8443",
    "https://127.1",
    "https://2130706433",
    "https://0x7f000001",
    "https://0.0.0.0",
    "https://10.0.0.5/realms/x",
    "https://172.16.0.1",
    "https://192.168.1.1",
    "https://100.100.100.200",
    "https://169.254.169.254/latest",
    "https://[::1]",
    "https://[::ffff:127.0.0.1]",
    "https://[fe80::1]",
    "https://[fd00::1]",
    "https://metadata.google.internal",
    "https://metadata",
    "https://printer.local",
    "http://127.0.0.1:9000",
]
BAD_ISSUERS = ["https://user@idp.example.com", "https://idp example.com", "https://idp.example.com?x=1"]


def _provider(client, issuer: str):
    token = csrf_of(client.get("/console/tempo/providers").get_data(as_text=True))
    form = {"name": "kantor", "kind": "oidc", "client_id": "cid", "secret": "s3cret", "issuer": issuer}
    return client.post("/console/tempo/providers", data={"csrf_token": token, **form})


def _add(runner, tmp_path, issuer: str):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    args = ["sites", "login-providers", "add", "tempo", "kantor", "--kind", "oidc", "--client-id", "cid"]
    return runner.invoke(args=[*args, "--issuer", issuer, "--client-secret-file", str(secret)])


@pytest.mark.config(SOCIAL_PRIVATE_ISSUERS=False)
@pytest.mark.parametrize("issuer", INTERNAL_ISSUERS + BAD_ISSUERS)
def test_the_console_refuses_an_issuer_on_the_operators_own_network(owner, runner, issuer):
    answer = _provider(owner, issuer)
    assert answer.status_code == 422, issuer
    assert "kantor" not in runner.invoke(args=["sites", "login-providers", "tempo"]).output


@pytest.mark.config(SOCIAL_PRIVATE_ISSUERS=False)
@pytest.mark.parametrize("issuer", INTERNAL_ISSUERS + BAD_ISSUERS)
def test_the_command_line_refuses_an_issuer_on_the_operators_own_network(runner, api, tmp_path, issuer):
    result = _add(runner, tmp_path, issuer)
    assert result.exit_code not in (0, None) and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "issuer" in lines[0], result.output


@pytest.mark.config(SOCIAL_PRIVATE_ISSUERS=False)
def test_a_public_issuer_is_accepted(owner, runner, tmp_path):
    assert _provider(owner, "https://idp.example.com/realms/tempo").status_code == 303
    assert _add(runner, tmp_path, "https://login.bücher.example").exit_code == 0


@pytest.mark.config(SOCIAL_PRIVATE_ISSUERS=True)
def test_an_operator_may_allow_issuers_on_their_own_network(owner, runner, tmp_path):
    """Development and the tests run their provider on loopback; an intranet's own provider (10.x) is
    the operator's choice, made explicitly."""
    assert _add(runner, tmp_path, "http://127.0.0.1:9000").exit_code == 0
    assert _provider(owner, "https://10.0.0.5/realms/x").status_code == 303
