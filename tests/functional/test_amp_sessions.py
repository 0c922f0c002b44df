"""AMP reader ids linked by a login are sessions of the account, over HTTP with real Redis and database.

A link is made only by a login that AMP's login flow started (its `return` on an AMP viewer or the
site's origins): a link someone else made (`/login?rid=THEIRS`) links nothing. A linked rid is listed
on the account page ("AMP · when · browser"), ended there, by a password change, by "end all other
sessions" and by AMP's sign-out, and each account keeps at most the site's `amp_links_max` of them.
"""

from __future__ import annotations

from urllib.parse import urlencode

from tests.functional.test_account_pages import ANDROID, EMAIL, PASSWORD, account, browser, csrf, post_form
from tests.functional.test_amp import auth

ATTACKER_RID = "amp-attacker-00000001"
RID = "amp-victim-000000001"
AMP_RETURN = "https://cdn.ampproject.org/v0/amp-login-done-0.1.html?url=https%3A%2F%2Ftempo.co%2Famp%2Fx"


def subscribed_reader(runner, verified_reader) -> None:
    verified_reader(EMAIL, PASSWORD)
    result = runner.invoke(args=["readers", "subscribe", "tempo", EMAIL, "--until", "2099-01-01T00:00:00Z"])
    assert result.exit_code == 0, result.output


def amp_log_in(client, rid: str, amp_return: str | None = AMP_RETURN, password: str = PASSWORD):
    """The login page as AMP's login flow opens it (`rid` and AMP's `return`), then its form posted."""
    query = {"rid": rid, **({"return": amp_return} if amp_return else {})}
    page = client.get("/tempo/login?" + urlencode(query)).get_data(as_text=True)
    data = {"csrf_token": csrf(page), "email": EMAIL, "password": password, "rid": rid}
    if amp_return:
        data["amp_return"] = amp_return
    return client.post("/tempo/login", data=data)


def granted(app, rid: str) -> dict:
    """The AMP authorization of `rid` from a viewer that sends no cookie (the rid alone)."""
    return auth(app.test_client(), rid=rid, cls="premium").get_json()


def test_a_login_link_made_by_someone_else_links_nothing(app, runner, verified_reader):
    """The attack: the victim signs in through `/login?rid=ATTACKER_RID`; the attacker's AMP reader id
    must not answer with the victim's subscription."""
    subscribed_reader(runner, verified_reader)
    victim = browser(app)
    assert amp_log_in(victim, ATTACKER_RID, amp_return=None).status_code == 200
    answer = granted(app, ATTACKER_RID)
    assert answer["granted"] is False and answer["data"]["isLoggedIn"] is False, answer
    # nor with a `return` that is not AMP's viewer nor the site
    for elsewhere in ("https://evil.example/amp-login-done.html", "javascript:alert(1)", "//cdn.ampproject.org/x"):
        response = amp_log_in(browser(app), ATTACKER_RID, amp_return=elsewhere)
        assert response.status_code == 200 and "Location" not in response.headers
        assert granted(app, ATTACKER_RID)["granted"] is False
    assert "<strong>AMP ·" not in account(victim).get_data(as_text=True)


def test_amps_login_flow_links_the_rid_as_a_session_listed_on_the_account_page(app, runner, verified_reader):
    subscribed_reader(runner, verified_reader)
    client = browser(app, ANDROID)
    done = amp_log_in(client, RID)
    assert done.status_code == 303 and done.headers["Location"] == AMP_RETURN + "#success=true"
    answer = granted(app, RID)
    assert answer["granted"] is True and answer["grantReason"] == "SUBSCRIBER"
    html = account(client).get_data(as_text=True)
    assert html.count("<strong>AMP · ") == 1 and "Chrome · Android" in html, html
    # the site's own origin is AMP's return too (a runtime served from the publisher)
    other = browser(app)
    site_return = "https://tempo.co/amp-login-done.html"
    assert amp_log_in(other, "amp-origin-000000001", site_return).headers["Location"] == site_return + "#success=true"
    assert granted(app, "amp-origin-000000001")["grantReason"] == "SUBSCRIBER"


def test_ending_the_amp_session_on_the_account_page(app, runner, verified_reader):
    subscribed_reader(runner, verified_reader)
    client = browser(app)
    amp_log_in(client, RID)
    assert granted(app, RID)["granted"] is True
    html = account(client).get_data(as_text=True)
    assert 'action="/tempo/account/sessions/end"' in html
    session_id = html.split('name="session" value="', 1)[1].split('"', 1)[0]
    assert client.post("/tempo/account/sessions/end", data={"session": session_id}).status_code == 400  # no CSRF
    ended = post_form(client, "/tempo/account/sessions/end", session=session_id)
    assert ended.status_code == 303
    assert granted(app, RID)["granted"] is False
    html = account(client).get_data(as_text=True)
    assert "<strong>AMP · " not in html and 'class="notice"' in html
    # another reader's session, or this browser's own: not ended from here
    assert post_form(client, "/tempo/account/sessions/end", session="amp-" + "0" * 28).status_code == 404


def test_a_password_change_ends_the_amp_session(app, runner, verified_reader):
    subscribed_reader(runner, verified_reader)
    client = browser(app)
    amp_log_in(client, RID)
    assert granted(app, RID)["granted"] is True
    changed = post_form(client, "/tempo/account/password", current_password=PASSWORD, password="yang-baru-sekali")
    assert changed.status_code == 303
    assert granted(app, RID)["granted"] is False
    assert "<strong>AMP · " not in account(client).get_data(as_text=True)


def test_ending_every_other_session_ends_the_amp_session(app, runner, verified_reader):
    subscribed_reader(runner, verified_reader)
    client = browser(app)
    amp_log_in(client, RID)
    assert granted(app, RID)["granted"] is True
    assert post_form(client, "/tempo/account/sessions/end-others").status_code == 303
    assert granted(app, RID)["granted"] is False
    assert account(client).status_code == 200  # this browser's own session stays


def test_amps_sign_out_ends_its_session(app, runner, verified_reader):
    subscribed_reader(runner, verified_reader)
    client = browser(app)
    amp_log_in(client, RID)
    page = client.get("/tempo/logout?" + urlencode({"rid": RID, "return": AMP_RETURN})).get_data(as_text=True)
    out = client.post("/tempo/logout", data={"csrf_token": csrf(page), "rid": RID, "amp_return": AMP_RETURN})
    assert out.status_code == 303 and out.headers["Location"] == AMP_RETURN + "#success=true"
    assert granted(app, RID)["granted"] is False


def test_each_account_keeps_the_sites_number_of_amp_sessions_the_oldest_dropped(app, runner, verified_reader):
    subscribed_reader(runner, verified_reader)
    result = runner.invoke(args=["sites", "settings", "tempo", "--amp-links-max", "2"])
    assert result.exit_code == 0 and "amp_links_max\t2" in result.output, result.output
    client = browser(app)
    rids = [f"amp-capped-{n:010d}" for n in range(3)]
    for rid in rids:
        assert amp_log_in(client, rid).status_code == 303
    assert [granted(app, rid)["granted"] for rid in rids] == [False, True, True]
    assert account(client).get_data(as_text=True).count("<strong>AMP · ") == 2


def test_the_amp_links_setting(runner, api):
    assert "amp_links_max\t5" in runner.invoke(args=["sites", "settings", "tempo"]).output
    for bad in ("-1", "x", "101"):
        result = runner.invoke(args=["sites", "settings", "tempo", "--amp-links-max", bad])
        assert result.exit_code != 0 and "amp-links-max" in result.output, result.output
    result = runner.invoke(args=["sites", "settings", "tempo", "--amp-links-max", "0"])
    assert result.exit_code == 0 and "amp_links_max\t0" in result.output


def test_with_no_amp_sessions_allowed_amps_login_links_nothing(app, runner, verified_reader):
    subscribed_reader(runner, verified_reader)
    runner.invoke(args=["sites", "settings", "tempo", "--amp-links-max", "0"])
    client = browser(app)
    assert amp_log_in(client, RID).status_code == 303
    assert granted(app, RID)["granted"] is False
