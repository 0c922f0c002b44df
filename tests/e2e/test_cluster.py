"""The meter on a real Redis Cluster: 3 masters and 3 replicas of redis-server on loopback ports.

REDIS_URL=redis+cluster://… goes through redis-py's RedisCluster. The journey and the meter tests
run again here unchanged (imported below, so they use this module's `redis_url`), plus a check that
every key of one access check shares a slot, and a master failover (CLUSTER FAILOVER) during traffic.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import redis as redis_lib
from redis.crc import key_slot
from sqlalchemy import select

from meter.access.models import Unlock
from meter.access.rules.metering import journal
from meter.accounts.models import Reader
from meter.dev.redis_server import free_port, redis_server_binary
from meter.platform.db import db
from tests.conftest import Api, make_site, redis_for
from tests.functional.test_gifts import (  # noqa: F401  (the gift script on the cluster: its keys share the gift's slot)
    gifting,
    test_a_gift_lets_a_visitor_and_a_reader_with_none_left_read_and_neither_meter_moves,
    test_a_redis_that_lost_the_gift_rebuilds_it_from_sql_and_the_limit_holds,
    test_a_revoked_link_stops_at_once_everywhere,
    test_the_eleventh_device_is_refused_and_the_first_ten_keep_reading,
)
from tests.functional.test_journey import test_register_mail_activate_and_meter  # noqa: F401  (runs here on the cluster)
from tests.functional.test_meter import (  # noqa: F401  (each runs here again, on the cluster)
    test_a_flush_between_unlocks_loses_and_grants_nothing,
    test_anonymous_quota_and_carry_over_into_the_account,
    test_fifty_concurrent_checks_let_exactly_the_quota_in,
    test_ledger_rows_count_the_unlocks,
    test_login_with_anonymous_id_carries_unlocks_over,
    test_rolling_window_frees_the_oldest_unlock,
    verified_login,
)
from tests.functional.test_stats import (  # noqa: F401  (the figures' counting and roll-up, on the cluster)
    test_a_journey_is_counted_exactly_live_and_after_the_roll_up,
    test_the_figures_survive_a_loss_of_redis_but_for_what_was_not_rolled_up,
)

pytestmark = [pytest.mark.database_agnostic, pytest.mark.cluster, pytest.mark.xdist_group("cluster")]


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    import socket

    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisCluster:
    """Six redis-server processes (--cluster-enabled yes) joined by `redis-cli --cluster create`."""

    def __init__(self, base: Path, masters: int = 3, replicas: int = 1) -> None:
        self.base = base
        self.count = masters * (1 + replicas)
        self.replicas = replicas
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen] = []

    def start(self) -> RedisCluster:
        server = redis_server_binary()
        cli = os.path.join(os.path.dirname(server), "redis-cli")
        if not os.access(cli, os.X_OK):
            cli = shutil.which("redis-cli") or cli
        for _ in range(self.count):
            port = _cluster_port()
            d = self.base / str(port)
            d.mkdir(parents=True)
            args = [server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(d), "--daemonize", "no"]
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            args += ["--cluster-node-timeout", "3000", "--appendonly", "no", "--save", ""]
            args += ["--logfile", str(d / "redis.log"), "--loglevel", "warning"]
            self.processes.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.ports.append(port)
        for port in self.ports:
            self._wait(lambda p=port: self.node(p).ping())
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
        create += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=60)
        for port in self.ports:
            self._wait(lambda p=port: self.node(p).cluster("info")["cluster_state"] == "ok")
        for port in self.ports:
            self._wait(lambda p=port: self._synced(p))
        return self

    def _synced(self, port: int) -> bool:
        info = self.node(port).info("replication")
        return info["role"] == "master" or info.get("master_link_status") == "up"

    @staticmethod
    def _wait(ready, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except (redis_lib.ConnectionError, redis_lib.ResponseError, KeyError):
                pass
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not come up in time")

    def node(self, port: int) -> redis_lib.Redis:
        return redis_lib.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=5)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def primaries(self) -> list[int]:
        return [p for p in self.ports if self.node(p).info("replication")["role"] == "master"]

    def owner_and_replica(self, key: str) -> tuple[int, int]:
        """(master port, one of its replicas' ports) serving `key`'s slot.

        Waits until the node's view lists a replica for the slot: gossip may still be spreading it.
        """
        slot = key_slot(key.encode())
        found: list[tuple[int, int]] = []

        def listed() -> bool:
            for start, end, master, *replicas in self.node(self.ports[0]).execute_command("CLUSTER SLOTS"):
                if start <= slot <= end and replicas:
                    found.append((int(master[1]), int(replicas[0][1])))
                    return True
            return False

        self._wait(listed)
        return found[-1]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_url(redis_cluster):
    """Overrides conftest's: every test in this module runs against the cluster."""
    return redis_cluster.url


def test_the_app_talks_to_the_cluster(app, redis_client):
    from redis.cluster import RedisCluster as ClusterClient

    with app.app_context():
        from meter.platform.redis_conn import conn

        assert isinstance(conn().client, ClusterClient)
    assert isinstance(redis_client, ClusterClient)


def _all_keys(cluster: RedisCluster) -> list[str]:
    keys: list[str] = []
    for port in cluster.primaries():
        keys.extend(cluster.node(port).scan_iter("m:*", count=1000))
    return keys


def test_every_key_of_one_check_is_in_one_slot(app, api, verified_reader, redis_cluster):
    _, token = verified_reader()
    assert api.access("tempo:koran:a", reader_token=token)["reason"] == "unlocked_now"
    assert api.access("tempo:koran:a", anonymous_id="visitor-0000001")["allowed"] is False  # quota 0, still stored
    site = make_site(app, "roll", policy={"period": "rolling:7d", "quota": {"anonymous": 1}})
    assert Api(api.client, site, "roll").access("roll:a", anonymous_id="visitor-0000001")["reason"] == "unlocked_now"

    # the registration's mail budget (one key, touched by no check) is not among a check's keys
    keys = [key for key in _all_keys(redis_cluster) if not key.startswith("m:mail:")]
    by_tag: dict[str, set[int]] = {}
    for key in keys:
        tag = key[key.index("{") + 1 : key.index("}")]
        by_tag.setdefault(tag, set()).add(key_slot(key.encode()))
    # the reader's state, unlock and stats buckets; the visitor's calendar bucket and stats bucket on each
    # site; the visitor's rolling key; the ledger journal of each bucket where an unlock was answered
    assert len(keys) == 9
    assert len([k for k in keys if ":stats:" in k]) == 3
    assert len([k for k in keys if k.endswith(":journal")]) == 2
    assert by_tag and all(len(slots) == 1 for slots in by_tag.values())
    reader_keys = [k for k in keys if k.endswith(":st")]
    [state_key] = reader_keys
    tag = state_key[state_key.index("{") : state_key.index("}") + 1]
    assert any(k != state_key and tag in k for k in keys)  # its unlocks are under the same tag

    with app.app_context():  # the worker takes the journals from the cluster's nodes
        assert journal.drain() == 2
    assert not [k for k in _all_keys(redis_cluster) if k.endswith(":journal")]


def test_master_failover_during_traffic_gives_no_wrong_answer(app, redis_cluster):
    """CLUSTER FAILOVER of the master of the readers' slots while 4 threads keep asking."""
    api = Api(app.test_client(), make_site(app, "fo", policy={"degraded_mode": "deny"}), "fo")
    tokens = [verified_login(app, api, f"fo{n}@example.com") for n in range(4)]
    for token in tokens:  # each reader unlocks 2 articles before the failover: the answers are then known
        for article in ("a", "b"):
            assert api.access(f"fo:{article}", reader_token=token)["reason"] == "unlocked_now"
    # readers 1..4: bucket n of site "fo"; fail over the master of reader 1's bucket
    with app.app_context():
        from meter.access.rules.metering import layout
        from meter.platform import redis_keys as keynames

        bucket, _ = layout.place("r:1")
        site_id = db.session.scalar(select(Reader.site_id))
        key = keynames.state_bucket(site_id, bucket, app.config["METER_BUCKETS"])
    master, replica = redis_cluster.owner_and_replica(key)

    stop = threading.Event()
    answers: list[tuple[int, str, dict]] = []
    errors: list[str] = []

    def traffic(n: int) -> None:
        client = app.test_client()
        reader_api = Api(client, api.key, "fo")
        i = 0
        while not stop.is_set():
            article = ("a", "b", f"new{i}", "a")[i % 4]
            i += 1
            try:
                answers.append((n, article, reader_api.access(f"fo:{article}", reader_token=tokens[n])))
            except AssertionError as exc:  # a non-200 answer
                errors.append(str(exc))

    threads = [threading.Thread(target=traffic, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    RedisCluster._wait(lambda: len(answers) >= 20)  # traffic flows
    before = len(answers)
    # A manual failover gives up after 5 s when the replica cannot catch up in time (a busy machine):
    # asked again, up to four times, as an operator would.
    for _attempt in range(4):
        redis_cluster.node(replica).execute_command("CLUSTER FAILOVER")
        try:
            RedisCluster._wait(lambda: redis_cluster.node(replica).info("replication")["role"] == "master", timeout=7)
            break
        except RuntimeError:
            continue
    assert redis_cluster.node(replica).info("replication")["role"] == "master"
    promoted_at = len(answers)
    RedisCluster._wait(lambda: len(answers) >= promoted_at + 40 or bool(errors))  # and goes on after it
    stop.set()
    for t in threads:
        t.join(10)

    assert errors == []
    assert before > 0 and len(answers) > promoted_at  # traffic flowed before and after the promotion
    assert redis_cluster.node(master).info("replication")["role"] == "slave"  # the old master stepped down
    reasons = Counter(a["reason"] for _, _, a in answers)
    for _n, article, answer in answers:
        if article in ("a", "b"):
            assert answer["allowed"] and answer["reason"] == "already_unlocked", answer
        else:
            assert not answer["allowed"] and answer["reason"] in ("quota_exhausted", "degraded_deny"), answer
    assert reasons["unlocked_now"] == 0
    with app.app_context():
        assert db.session.query(Unlock).count() == 8  # 4 readers x 2: nothing more was let in
    # after the failover every check is answered by the cluster again, not degraded
    for token in tokens:
        answer = api.access("fo:a", reader_token=token)
        assert (answer["reason"], answer["degraded"]) == ("already_unlocked", False)
    print(f"failover: {len(answers)} answers, {promoted_at - before} during the switch, reasons {dict(reasons)}")


def test_redis_for_a_cluster_url_is_a_cluster_client(redis_url):
    client = redis_for(redis_url)
    assert client.ping()


@pytest.mark.cluster
def test_a_gifts_keys_share_one_slot_and_its_reads_touch_no_readers_slot(app, gifting, redis_cluster):  # noqa: F811 (the imported fixtures)
    from tests.functional.test_gifts import give, read

    api, giver = gifting
    token = give(api, giver).get_json()["gift_token"]
    before = set(_all_keys(redis_cluster))
    assert read(api, token, anonymous_id="visitor-0001")["reason"] == "gift"
    added = set(_all_keys(redis_cluster)) - before
    assert added and all(token[:16] in key for key in added)  # the gift's state and devices only
    assert len({key_slot(key.encode()) for key in added}) == 1
