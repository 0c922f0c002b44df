"""A reader cannot choose an article's class: signed descriptors, and AMP views that count without a pingback."""

from __future__ import annotations

import json

from meter.access.rules import article_signing
from meter.platform import clock
from tests.conftest import make_site

ORIGIN = "https://tempo.co"
RID = "amp-Abc123_xyz-000"


def _embed(client, article: dict, record: bool = True):
    body = {"article": article, "record": record, "url": f"{ORIGIN}/x"}
    return client.post("/embed/tempo/access", data=json.dumps(body), headers={"Origin": ORIGIN})


def _signing_key(runner, required: bool = True) -> tuple[str, str]:
    made = runner.invoke(args=["sites", "article-keys", "create", "tempo"])
    assert made.exit_code == 0, made.output
    kid = made.output.split("key ", 1)[1].split(" ", 1)[0]
    secret = made.output.strip().splitlines()[-1]
    if required:
        assert runner.invoke(args=["sites", "settings", "tempo", "--signed-articles", "required"]).exit_code == 0
    return kid, secret


def _signed(kid: str, secret: str, article_id: str, cls: str, expires: int | None = None) -> dict:
    expires = expires or clock.now_epoch() + 3600
    return {
        "id": article_id,
        "class": cls,
        "expires": expires,
        "sig": article_signing.sign(kid, secret, article_id, cls, expires),
    }


def test_a_reader_who_rewrites_the_class_to_free_reads_nothing_once_signing_is_required(app, client, runner):
    """The attack: the page says metered (or premium); the reader edits the call to say free."""
    make_site(app, policy={"quota": {"anonymous": 1, "verified": 2}})
    before = _embed(client, {"id": "tempo:laput:1", "class": "free"}).get_json()
    assert (before["allowed"], before["reason"]) == (True, "free_content")  # unsigned: the page is believed

    kid, secret = _signing_key(runner)
    forged = _embed(client, {"id": "tempo:laput:1", "class": "free"}).get_json()
    assert (forged["allowed"], forged["reason"]) == (False, "subscription_required")
    relabelled = _signed(kid, secret, "tempo:laput:1", "premium")
    relabelled["class"] = "free"  # the signature was made for premium
    assert _embed(client, relabelled).get_json()["reason"] == "subscription_required"
    other_article = _signed(kid, secret, "tempo:berita:1", "free")
    other_article["id"] = "tempo:laput:1"
    assert _embed(client, other_article).get_json()["reason"] == "subscription_required"
    expired = _signed(kid, secret, "tempo:berita:1", "free", expires=clock.now_epoch() - 1)
    assert _embed(client, expired).get_json()["reason"] == "subscription_required"
    assert (
        _embed(client, {**_signed(kid, secret, "tempo:berita:1", "free"), "sig": "v1.x.y.z"}).get_json()["reason"]
        == "subscription_required"
    )

    genuine_free = _embed(client, _signed(kid, secret, "tempo:berita:1", "free")).get_json()
    assert (genuine_free["allowed"], genuine_free["reason"]) == (True, "free_content")
    metered = _embed(client, _signed(kid, secret, "tempo:koran:1", "metered")).get_json()
    assert (metered["allowed"], metered["reason"], metered["meter"]["used"]) == (True, "unlocked_now", 1)
    refused = _embed(client, _signed(kid, secret, "tempo:koran:2", "metered")).get_json()
    assert refused["allowed"] is False and refused["meter"]["used"] == 1  # the forged reads counted nothing


def test_a_bad_signature_is_refused_even_when_signing_is_optional_and_keys_rotate(app, client, runner):
    make_site(app, policy={"quota": {"anonymous": 3}})
    kid, secret = _signing_key(runner, required=False)
    assert _embed(client, {"id": "tempo:berita:1", "class": "free"}).get_json()["reason"] == "free_content"
    wrong = {**_signed(kid, secret, "tempo:berita:2", "free"), "sig": "v1." + kid + ".AAAA"}
    assert _embed(client, wrong).get_json()["reason"] == "subscription_required"
    new_kid, new_secret = _signing_key(runner, required=False)
    assert runner.invoke(args=["sites", "article-keys", "revoke", "tempo", kid]).exit_code == 0
    listed = runner.invoke(args=["sites", "article-keys", "list", "tempo"]).output
    assert secret not in listed and new_secret not in listed and f"{kid}\t" in listed
    assert (
        _embed(client, _signed(kid, secret, "tempo:berita:3", "free")).get_json()["reason"] == "subscription_required"
    )
    assert _embed(client, _signed(new_kid, new_secret, "tempo:berita:3", "free")).get_json()["reason"] == "free_content"


def _amp(client, method: str, **query):
    query = {"rid": RID, "url": f"{ORIGIN}/amp/1", "__amp_source_origin": ORIGIN, **query}
    return client.open(
        f"/amp/tempo/{'authorization' if method == 'GET' else 'pingback'}",
        method=method,
        query_string=query,
        headers={"Origin": ORIGIN},
    )


def test_amp_checks_signatures_too(app, client, runner):
    make_site(app, policy={"quota": {"anonymous": 2}})
    kid, secret = _signing_key(runner)
    forged = _amp(client, "GET", article="tempo:laput:1", **{"class": "free"}).get_json()
    assert forged["granted"] is False and forged["reason"] == "subscription_required"
    signed = _signed(kid, secret, "tempo:koran:1", "metered")
    query = {"article": signed["id"], "class": "metered", "expires": str(signed["expires"]), "sig": signed["sig"]}
    assert _amp(client, "GET", **query).get_json()["grantReason"] == "METERING"
    assert _amp(client, "GET", **{**query, "expires": "soon"}).status_code == 422


def test_an_amp_viewer_that_never_sends_the_pingback_is_counted_when_the_site_asks(app, client, runner):
    """The attack: block the pingback, and authorizations alone grant every article, counted never."""
    make_site(app, policy={"quota": {"anonymous": 2}})
    for n in range(4):
        assert _amp(client, "GET", article=f"tempo:koran:{n}").get_json()["granted"] is True  # never counted
    assert runner.invoke(args=["sites", "settings", "tempo", "--amp-counts-on", "authorization"]).exit_code == 0
    grants = [_amp(client, "GET", article=f"tempo:koran:{n}").get_json()["granted"] for n in range(4)]
    assert grants == [True, True, False, False]
    assert _amp(client, "GET", article="tempo:koran:0").get_json()["reason"] == "already_unlocked"
    assert _amp(client, "POST", article="tempo:koran:3").status_code == 204  # the pingback adds nothing now
    assert _amp(client, "GET", article="tempo:koran:1").get_json()["data"]["articlesRead"] == 2
