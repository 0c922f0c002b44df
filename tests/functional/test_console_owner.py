"""`make run`'s console owner of the demo site (meter/dev/console_owner.py): a set-up link in the banner until
the owner has set up, then where to sign in."""

from __future__ import annotations

import subprocess

from meter.dev import console_owner
from tests.conftest import make_site
from tests.console_helpers import set_up


def _runner_as_subprocess(runner):
    def run(_env, *args: str) -> subprocess.CompletedProcess:
        result = runner.invoke(args=list(args))
        return subprocess.CompletedProcess(args, result.exit_code, result.output, "")

    return run


def test_the_banner_has_a_set_up_link_until_the_owner_is_set_up(app, runner):
    make_site(app, "demo", ("http://127.0.0.1:5000",))
    run = _runner_as_subprocess(runner)
    first = console_owner.banner_lines(run, {}, "http://127.0.0.1:5000")
    link = first[1].strip()
    assert link.startswith("http://meter.test/console/setup/") and console_owner.OWNER in first[0]
    second = console_owner.banner_lines(run, {}, "http://127.0.0.1:5000")
    assert second[1].strip() != link  # a fresh link each start while not set up; the old one died
    set_up(app.test_client(), second[1].strip())
    done = console_owner.banner_lines(run, {}, "http://127.0.0.1:5000")
    assert len(done) == 1 and "http://127.0.0.1:5000/console/" in done[0] and "demo traffic" in done[0]
