"""Search engines' crawlers and link previews: the published ranges, reverse DNS against a real DNS server
on loopback (dnslib's), impostors, `crawlers: off`, previews that never count, `flask crawlers update`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from dnslib import AAAA, PTR, QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from sqlalchemy import func, select

from meter import create_app
from meter.access.models import Unlock
from meter.access.rules.crawlers import dns_check, ranges
from meter.access.rules.metering.layout import hash64
from meter.dev.redis_server import free_port
from meter.platform.db import db
from tests.conftest import Api, _config_dict
from tests.functional.test_gifts import set_policy

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
)
BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"
WHATSAPP = "WhatsApp/2.23.20.0 A"
FACEBOOK = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
IN_RANGES = "66.249.66.1"  # Googlebot's published ranges (crawler_ranges.json)
OUTSIDE = "203.0.113.9"


class Zone(BaseResolver):
    """A tiny authoritative zone: {(name, type): [values]}; everything else NXDOMAIN. Counts the questions."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = {(name.lower().rstrip(".") + ".", kind): values for (name, kind), values in records.items()}
        self.asked: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        reply = request.reply()
        name, kind = str(request.q.qname).lower(), QTYPE[request.q.qtype]
        with self.lock:
            self.asked.append((name, kind))
        values = self.records.get((name, kind))
        if values is None:
            if not any(n == name for n, _ in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
            return reply
        make = {"PTR": PTR, "A": A, "AAAA": AAAA}[kind]
        for value in values:
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=make(value), ttl=60))
        return reply


RECORDS = {
    # a real Googlebot outside the shipped ranges: PTR under googlebot.com, and back
    ("77.90.249.66.in-addr.arpa", "PTR"): ["crawl-66-249-90-77.googlebot.com"],
    ("crawl-66-249-90-77.googlebot.com", "A"): ["66.249.90.77"],
    # a PTR that names googlebot.com but resolves elsewhere
    ("34.216.184.93.in-addr.arpa", "PTR"): ["crawl-66-249-66-1.googlebot.com"],
    ("crawl-66-249-66-1.googlebot.com", "A"): ["66.249.66.1"],
    # a PTR elsewhere, one merely ending in "googlebot.com", and a real Bingbot
    ("35.216.184.93.in-addr.arpa", "PTR"): ["host-35.example.net"],
    ("host-35.example.net", "A"): ["93.184.216.35"],
    ("36.216.184.93.in-addr.arpa", "PTR"): ["crawl.evilgooglebot.com"],
    ("crawl.evilgooglebot.com", "A"): ["93.184.216.36"],
    ("9.1.55.157.in-addr.arpa", "PTR"): ["msnbot-157-55-1-9.search.msn.com"],
    ("msnbot-157-55-1-9.search.msn.com", "A"): ["157.55.1.9"],
}


@pytest.fixture
def dns_server(app):
    zone = Zone(RECORDS)
    port = free_port()
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")
    server = DNSServer(zone, port=port, address="127.0.0.1", logger=quiet)
    server.start_thread()
    app.config["CRAWLER_DNS_SERVER"] = f"127.0.0.1:{port}"
    dns_check._cache.clear()
    yield zone
    server.stop()
    dns_check._cache.clear()


@pytest.fixture
def crawling(app, api):
    set_policy(app, "tempo", crawlers="verified")
    return api


def ask(
    api: Api, ip: str | None, user_agent: str | None, cls: str = "metered", article: str = "tempo:koran:1", **extra
):
    body = {"article": {"id": article, "class": cls}, "anonymous_id": "visitor-0001", **extra}
    body["client"] = {k: v for k, v in (("ip", ip), ("user_agent", user_agent)) if v is not None}
    response = api.post("/v1/access", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def unlocks(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Unlock))


def test_a_googlebot_in_the_published_ranges_reads_everything_and_nothing_is_counted(app, crawling):
    for cls, reason in (("metered", "crawler"), ("premium", "crawler"), ("free", "free_content")):
        answer = ask(crawling, IN_RANGES, GOOGLEBOT, cls)
        assert (answer["allowed"], answer["reason"], answer["reader"]["state"]) == (True, reason, "anonymous")
    assert ask(crawling, "2001:4860:4801:10::1", GOOGLEBOT)["reason"] == "crawler"  # IPv6 ranges too
    assert ask(crawling, "157.55.39.10", BINGBOT)["reason"] == "crawler"
    assert unlocks(app) == 0


def test_an_impostor_is_an_ordinary_anonymous_visitor(app, crawling, dns_server):
    impostor = ask(crawling, OUTSIDE, GOOGLEBOT)
    assert (impostor["allowed"], impostor["reason"]) == (False, "registration_required")
    assert ask(crawling, "157.55.39.10", GOOGLEBOT)["reason"] == "registration_required"  # Bing's address, not Google's
    assert ask(crawling, None, GOOGLEBOT)["reason"] == "registration_required"  # no address at all
    assert ask(crawling, IN_RANGES, BROWSER)["reason"] == "registration_required"  # Google's address, a browser
    # Bing's address is public: DNS is asked (a Googlebot may crawl from outside the list); the
    # private or documentation address and the browser cost no DNS question.
    assert dns_server.asked == [("10.39.55.157.in-addr.arpa.", "PTR")]


def test_crawlers_off_ignores_all_of_it(app, api, dns_server):
    assert ask(api, IN_RANGES, GOOGLEBOT)["reason"] == "registration_required"
    assert ask(api, "66.249.90.77", GOOGLEBOT)["reason"] == "registration_required"
    assert dns_server.asked == []


def test_reverse_dns_yes_no_and_a_lying_ptr(app, crawling, dns_server, redis_client):
    verified = ask(crawling, "66.249.90.77", GOOGLEBOT)
    assert (verified["allowed"], verified["reason"]) == (True, "crawler")
    assert ("77.90.249.66.in-addr.arpa.", "PTR") in dns_server.asked
    assert ("crawl-66-249-90-77.googlebot.com.", "A") in dns_server.asked
    assert ask(crawling, "157.55.1.9", BINGBOT)["reason"] == "crawler"

    lying = ask(crawling, "93.184.216.34", GOOGLEBOT)  # PTR says googlebot.com, the name resolves elsewhere
    assert (lying["allowed"], lying["reason"]) == (False, "registration_required")
    assert ask(crawling, "93.184.216.35", GOOGLEBOT)["reason"] == "registration_required"  # PTR elsewhere
    assert ask(crawling, "93.184.216.36", GOOGLEBOT)["reason"] == "registration_required"  # evilgooglebot.com
    assert ask(crawling, "93.184.216.37", GOOGLEBOT)["reason"] == "registration_required"  # no PTR at all

    yes, no = (f"m:crawler:google:{hash64(ip).hex()}" for ip in ("66.249.90.77", "93.184.216.34"))
    assert redis_client.get(yes) == "1"
    assert 86000 < redis_client.ttl(yes) <= 86400  # a yes: a day
    assert redis_client.get(no) == "0"
    assert 3500 < redis_client.ttl(no) <= 3600  # a no: an hour
    assert not any("93.184" in key or "66.249" in key for key in redis_client.keys("*"))  # no address kept

    asked = len(dns_server.asked)
    for _ in range(3):
        assert ask(crawling, "66.249.90.77", GOOGLEBOT)["reason"] == "crawler"
        assert ask(crawling, "93.184.216.34", GOOGLEBOT)["reason"] == "registration_required"
    assert len(dns_server.asked) == asked  # never waits on DNS twice in this process

    dns_check._cache.clear()  # another process: the answers come from Redis, not DNS
    assert ask(crawling, "66.249.90.77", GOOGLEBOT)["reason"] == "crawler"
    assert ask(crawling, "93.184.216.34", GOOGLEBOT)["reason"] == "registration_required"
    assert len(dns_server.asked) == asked


def test_a_dns_server_that_does_not_answer_verifies_nobody(app, crawling):
    app.config["CRAWLER_DNS_SERVER"] = f"127.0.0.1:{free_port()}"  # nothing listens
    dns_check._cache.clear()
    assert ask(crawling, "66.249.90.77", GOOGLEBOT)["reason"] == "registration_required"
    dns_check._cache.clear()


def test_link_previews_never_read_and_never_count(app, api, verified_reader):
    _reader_id, token = verified_reader()
    for agent in (WHATSAPP, FACEBOOK):
        for cls, expected in (
            ("metered", (False, "preview")),
            ("premium", (False, "preview")),
            ("free", (True, "free_content")),
        ):
            answer = ask(api, IN_RANGES, agent, cls, reader_token=token)
            assert (answer["allowed"], answer["reason"]) == expected, (agent, cls)
    me = api.get("/v1/readers/me", headers={"X-Reader-Token": token}).get_json()
    assert me["meter"]["used"] == 0
    assert unlocks(app) == 0
    assert ask(api, None, BROWSER, reader_token=token)["reason"] == "unlocked_now"  # the reader's own read counts


def test_the_embed_and_amp_use_their_own_request_address_and_agent(app, crawling, client):
    origin = {"Origin": "https://tempo.co"}
    page = {"article": {"id": "tempo:koran:1", "class": "metered"}}
    crawler = client.post(
        "/embed/tempo/access",
        json=page,
        headers={**origin, "User-Agent": GOOGLEBOT},
        environ_base={"REMOTE_ADDR": IN_RANGES},
    ).get_json()
    assert (crawler["allowed"], crawler["reason"], crawler["wall"]) == (True, "crawler", None)
    preview = client.post("/embed/tempo/access", json=page, headers={**origin, "User-Agent": WHATSAPP}).get_json()
    assert (preview["allowed"], preview["reason"], preview["wall"]["kind"]) == (False, "preview", "register")
    forwarded = client.post(
        "/embed/tempo/access", json=page, headers={**origin, "User-Agent": GOOGLEBOT, "X-Forwarded-For": IN_RANGES}
    ).get_json()
    assert forwarded["reason"] == "registration_required"  # X-Forwarded-For is not trusted without TRUSTED_PROXIES
    query = {"rid": "amp-reader-0001", "url": "https://tempo.co/amp/1", "article": "tempo:koran:1"}
    amp = client.get(
        "/amp/tempo/authorization",
        query_string=query,
        headers={"User-Agent": GOOGLEBOT},
        environ_base={"REMOTE_ADDR": IN_RANGES},
    ).get_json()
    assert (amp["granted"], amp["grantReason"], amp["reason"]) == (True, "FREE", "crawler")


def test_behind_trusted_proxies_the_forwarded_address_is_the_clients(app, database_url, redis_url, crawling):
    proxied = create_app(
        {**_config_dict(), "SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url, "TRUSTED_PROXIES": 1}
    )
    answer = (
        proxied.test_client()
        .post(
            "/embed/tempo/access",
            json={"article": {"id": "tempo:koran:1", "class": "metered"}},
            headers={"Origin": "https://tempo.co", "User-Agent": GOOGLEBOT, "X-Forwarded-For": IN_RANGES},
        )
        .get_json()
    )
    assert answer["reason"] == "crawler"


def test_a_bad_client_is_a_422_never_a_500(app, api):
    for client in (
        {"ip": "not-an-address"},
        {"ip": 12},
        {"user_agent": "x" * 1025},
        "66.249.66.1",
        {"ip": "1.2.3.4.5"},
    ):
        response = api.post("/v1/access", json={"article": {"id": "tempo:1"}, "client": client})
        assert response.status_code == 422, client
        assert response.get_json()["type"].endswith("/validation-failed")


def test_flask_crawlers_update_from_a_file(app, crawling, runner, tmp_path):
    app.config["CRAWLER_RANGES_FILE"] = str(tmp_path / "crawler_ranges.json")
    ranges.forget()
    shown = runner.invoke(args=["crawlers", "show"])
    assert shown.exit_code == 0 and "google\t307 networks\ttaken 2026-11-30" in shown.output
    assert "jonhadfield/cloud-ips" in shown.output

    feed = tmp_path / "googlebot.json"
    feed.write_text(json.dumps({"creationTime": "2026-12-01T00:00:00", "prefixes": [{"ipv4Prefix": "66.249.92.0/27"}]}))
    done = runner.invoke(args=["crawlers", "update", "--from", str(feed), "--operator", "google"])
    assert done.exit_code == 0, done.output
    assert "google: 1 networks" in done.output
    assert ask(crawling, "66.249.92.5", GOOGLEBOT)["reason"] == "crawler"
    assert ask(crawling, IN_RANGES, GOOGLEBOT)["reason"] == "registration_required"  # replaced
    assert ask(crawling, "157.55.39.10", BINGBOT)["reason"] == "crawler"  # the others kept theirs
    written = json.loads((tmp_path / "crawler_ranges.json").read_text())
    assert written["operators"]["google"]["creationTime"] == "2026-12-01T00:00:00"
    assert written["operators"]["google"]["copied_from"] == f"the file {feed}"

    for bad in (
        {"prefixes": [{"ipv4Prefix": "10.0.0.0/8"}]},
        {"prefixes": []},
        {"prefixes": [{"ipv4Prefix": "0.0.0.0/0"}]},
        [1],
    ):
        feed.write_text(json.dumps(bad))
        refused = runner.invoke(args=["crawlers", "update", "--from", str(feed), "--operator", "google"])
        assert refused.exit_code != 0 and "nothing written" in refused.output, refused.output
    assert ask(crawling, "66.249.92.5", GOOGLEBOT)["reason"] == "crawler"  # still the good list

    whole = tmp_path / "all.json"
    whole.write_text(runner.invoke(args=["crawlers", "show", "--json"]).output)
    assert runner.invoke(args=["crawlers", "update", "--from", str(whole)]).exit_code == 0
    ranges.forget()


def test_flask_crawlers_update_downloads_each_feed_and_keeps_a_list_whose_download_fails(
    app, crawling, runner, tmp_path, monkeypatch
):
    from meter.access.commands import crawlers as command

    app.config["CRAWLER_RANGES_FILE"] = str(tmp_path / "crawler_ranges.json")
    ranges.forget()
    asked: list[str] = []

    def download(url: str) -> dict:
        asked.append(url)
        if "bing" in url:
            raise OSError("no route to host")
        return {"creationTime": "2026-12-01T00:00:00", "prefixes": [{"ipv4Prefix": "17.241.75.0/24"}]}

    monkeypatch.setattr(command, "_download", download)
    done = runner.invoke(args=["crawlers", "update"])
    assert done.exit_code != 0 and "not updated: bing" in done.output, done.output
    assert sorted(asked) == sorted(
        [
            "https://developers.google.com/static/search/apis/ipranges/googlebot.json",
            "https://www.bing.com/toolbox/bingbot.json",
            "https://search.developer.apple.com/applebot.json",
            "https://duckduckgo.com/duckduckbot.json",
        ]
    )  # Yandex publishes no feed: its shipped list stays
    written = json.loads((tmp_path / "crawler_ranges.json").read_text())["operators"]
    assert written["apple"]["prefixes"] == [{"ipv4Prefix": "17.241.75.0/24"}]
    assert len(written["bing"]["prefixes"]) == 28 and len(written["yandex"]["prefixes"]) == 14  # kept
    assert ask(crawling, "157.55.39.10", BINGBOT)["reason"] == "crawler"
    ranges.forget()


def test_the_policy_keys_on_the_command_line(app, api, runner):
    import json as json_lib

    done = runner.invoke(
        args=["sites", "policy", "tempo", "--set", "crawlers=verified", "--set", "gifts.per_period=10"]
    )
    assert done.exit_code == 0, done.output
    policy = json_lib.loads(done.output)
    assert policy["crawlers"] == "verified"
    assert policy["gifts"] == {"per_period": 10, "days": 14, "devices": 10}
    for bad in ("crawlers=maybe", "gifts.devices=0", "gifts.days=x", "gifts.colour=1"):
        refused = runner.invoke(args=["sites", "policy", "tempo", "--set", bad])
        assert refused.exit_code != 0, bad


@pytest.mark.config(CRAWLER_RANGES_FILE="")
def test_the_update_writes_into_the_state_folder_not_the_checkout(app, crawling, runner, tmp_path):
    """Deployed, the checkout is root's and read-only (ProtectSystem=strict): the one folder meter
    writes is STATE_DIR (/var/lib/meter, StateDirectory=meter)."""
    state = tmp_path / "state"
    state.mkdir()
    app.config["STATE_DIR"] = str(state)
    ranges.forget()
    feed = tmp_path / "googlebot.json"
    feed.write_text(json.dumps({"creationTime": "2026-12-01T00:00:00", "prefixes": [{"ipv4Prefix": "66.249.92.0/27"}]}))
    done = runner.invoke(args=["crawlers", "update", "--from", str(feed), "--operator", "google"])
    assert done.exit_code == 0, done.output
    assert json.loads((state / "crawler_ranges.json").read_text())["operators"]["google"]["prefixes"]
    assert not (Path(app.instance_path) / "crawler_ranges.json").exists()
    assert ask(crawling, "66.249.92.5", GOOGLEBOT)["reason"] == "crawler"
    ranges.forget()
