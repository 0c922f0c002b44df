"""The variant assignment (meter.sites.rules.experiments): 10,000 simulated readers split within ±2% of
the shares; the same seed always lands in the same variant; another experiment, meter, site or
SECRET_KEY splits independently; the Wilson interval of the figures."""

from __future__ import annotations

from collections import Counter

import pytest

from meter.sites.rules.experiments import Experiment, anonymous_seed, hash_key, reader_seed, validate
from meter.stats.variants import wilson

READERS = 10_000


def experiment(shares: dict[str, int], name: str = "q1") -> Experiment:
    variants = {variant: {"share": share} for variant, share in shares.items()}
    given = {"name": name, "start": "2027-01-01", "end": "2027-02-01", "variants": variants}
    return Experiment.from_dict(validate(given, "experiment", "Asia/Jakarta"))


@pytest.mark.parametrize(
    "shares", [{"a": 50, "b": 50}, {"a": 20, "b": 30, "c": 50}, {"a": 10, "b": 20, "c": 30, "d": 40}]
)
def test_10000_readers_split_within_2_percent_of_the_shares(shares):
    tried = experiment(shares)
    key = hash_key("the-secret", 1, "default", tried.name)
    seen = Counter(tried.variant_of(key, anonymous_seed(f"visitor-{n:05d}")).name for n in range(READERS))
    for variant, share in shares.items():
        assert abs(seen[variant] / READERS * 100 - share) <= 2, seen


def test_a_seed_stays_in_its_variant_and_experiments_split_independently():
    tried = experiment({"a": 50, "b": 50})
    key = hash_key("the-secret", 1, "default", "q1")
    seeds = [anonymous_seed(f"visitor-{n:05d}") for n in range(2000)]
    first = [tried.variant_of(key, seed).name for seed in seeds]
    assert first == [tried.variant_of(key, seed).name for seed in seeds]
    for other in (
        hash_key("the-secret", 1, "default", "q2"),
        hash_key("the-secret", 1, "koran", "q1"),
        hash_key("the-secret", 2, "default", "q1"),
        hash_key("another-secret", 1, "default", "q1"),
    ):
        again = [tried.variant_of(other, seed).name for seed in seeds]
        same = sum(x == y for x, y in zip(first, again, strict=True)) / len(seeds)
        assert 0.45 < same < 0.55  # independent: half agree by chance
    assert reader_seed(7, None) != reader_seed(8, None) and reader_seed(7, "abc") == "abc"


def test_the_wilson_interval():
    """Reference values worked by hand with z = 1.96 (81 of 263: 0.2553 to 0.3662)."""
    assert wilson(0, 0) is None
    interval = wilson(1, 2)
    assert interval["rate"] == 0.5 and interval["low"] == pytest.approx(0.094531, abs=1e-5)
    assert interval["high"] == pytest.approx(0.905469, abs=1e-5)
    assert wilson(81, 263) == {
        "rate": pytest.approx(0.307985, abs=1e-6),
        "low": pytest.approx(0.25528, abs=1e-4),
        "high": pytest.approx(0.36621, abs=1e-4),
    }
    assert wilson(5, 3)["rate"] == 1.0  # more conversions than walls: every wall converted
