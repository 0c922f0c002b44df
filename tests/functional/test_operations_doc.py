"""Every command in docs/operations.md, as written: an operator copies them onto a fresh Debian 12.

Each `sh` block is read line by line. meter's own commands (`meter-flask …`, `flask …`) are parsed by
the real command line, so a renamed command or option fails here; the files under /opt/meter that
the commands name must be in the repository. Commands of the host (apt-get, systemctl, psql, nginx …)
cannot run in a test: each kind is listed below with the reason, and a line of a kind not listed
fails the test, so a new command in the document is either checked or explained.
"""

from __future__ import annotations

import re
import shlex

import click
import pytest

from tests.servers import ROOT

DOC = ROOT / "docs" / "operations.md"
pytestmark = pytest.mark.database_agnostic

# What a test cannot run, and why. The key is the line's first word (after environment assignments
# and `sudo -u USER`).
HOST_ONLY = {
    "apt-get": "installs Debian packages on the host",
    "adduser": "makes a system user",
    "git": "fetches the code from its remote",
    "python3": "a one-liner that makes a key; it prints, nothing to check",
    "/opt/meter/venv/bin/pip": "installs requirements.txt into the host's venv (make install does the same here)",
    "psql": "changes the host's PostgreSQL (tests/e2e/test_backup.py runs pg_dump and pg_restore)",
    "pg_restore": "restores into the host's database (tests/e2e/test_backup.py runs the same restore)",
    "systemctl": "needs a running systemd (tests/functional/test_deploy_units.py verifies the units offline)",
    "journalctl": "reads the host's journal",
    "curl": "asks the running service (the tests ask it over HTTP throughout)",
    "redis-cli": "changes the host's Redis",
    "nginx": "checks and reloads the host's nginx (tests/e2e/test_nginx.py runs the same file)",
    "certbot": "asks a certificate authority on the internet",
    "cp": "copies deploy/ files into /etc (their sources are checked below)",
    "install": "makes a folder with an owner and mode on the host",
    "chown": "sets an owner on the host",
    "chmod": "sets a mode on the host",
    "cat": "writes a configuration file on the host (a here-document)",
    "echo": "writes a configuration file on the host",
    ":": "empties a file on the host",
    "rm": "removes a file on the host",
    "sed": "edits a file on the host",
    "editor": "an operator's editor",
    "cd": "changes folder",
    "ls": "lists a folder",
}
MARKERS = ("EOF", "SQL")  # the end of a here-document


def command_lines() -> list[str]:
    """The shell lines of the document: continuations joined, comments and here-document bodies dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S):
        text = re.sub(r"\\\n\s*", " ", block)
        heredoc_end = None
        for raw in text.splitlines():
            line = raw.strip()
            if heredoc_end is not None:
                if line == heredoc_end:
                    heredoc_end = None
                continue
            if not line or line.startswith("#"):
                continue
            found = re.search(r"<<-?\s*'?(\w+)'?", line)
            if found:
                heredoc_end = found.group(1)
            lines.append(re.split(r"\s+#\s", line)[0].strip())
    return lines


def words_of(line: str) -> list[str]:
    """The command's words: environment assignments and `sudo -u USER` (and its assignments) left out."""
    words = shlex.split(line.split(" && ")[0].split(" | ")[0].split(" > ")[0])
    while words and (re.match(r"^[A-Z_]+=", words[0]) or words[0] == "sudo"):
        skip = 3 if words[0] == "sudo" and words[1:2] == ["-u"] else 1
        words = words[skip:]
    return words


def meters_own(words: list[str]) -> list[str] | None:
    """The `flask` arguments of a line that runs meter's command line, else None."""
    if words and words[0].endswith("meter-flask"):
        return words[1:]
    if words[:1] == ["flask"] or words[:1] == ["/opt/meter/venv/bin/flask"]:
        return [w for w in words[1:] if w not in ("--app", "wsgi")]
    return None


def parse(app, args: list[str]) -> None:
    """Resolve the command through meter's own command line and parse its options, without running it."""
    group: click.Group = app.cli
    ctx = click.Context(group, info_name="flask")
    while isinstance(group, click.Group):
        name, command, args = group.resolve_command(ctx, args)
        assert command is not None, f"no command {name!r}"
        if not isinstance(command, click.Group):
            command.make_context(name, list(args), parent=ctx)
            return
        group, ctx = command, click.Context(command, info_name=name, parent=ctx)


def test_every_command_is_meters_own_and_parses_or_is_listed_with_why(app):
    lines = command_lines()
    assert len(lines) > 40  # the document's blocks were found
    unexplained = []
    for line in lines:
        if line in MARKERS:
            continue
        words = words_of(line)
        if not words:
            continue
        own = meters_own(words)
        if own is not None:
            try:
                parse(app, own)
            except click.BadParameter as exc:
                if "does not exist" not in str(exc):  # an operator's own file (a feed, a key) named as an example
                    pytest.fail(f"docs/operations.md: `{line}` does not parse: {exc}")
            except (click.UsageError, AssertionError) as exc:
                pytest.fail(f"docs/operations.md: `{line}` does not parse: {exc}")
            continue
        if words[0] not in HOST_ONLY:
            unexplained.append(line)
    assert not unexplained, f"check these lines or list their command in HOST_ONLY with why: {unexplained}"


def test_the_files_the_commands_name_are_in_the_repository():
    for path in sorted(set(re.findall(r"/opt/meter/((?:deploy|docs)/[\w./*-]+)", DOC.read_text()))):
        if "*" in path:
            assert list(ROOT.glob(path)), path
        else:
            assert (ROOT / path).exists(), f"docs/operations.md names /opt/meter/{path}, which the repository lacks"


def test_sudo_is_installed_before_it_is_used_and_no_tag_is_named_that_does_not_exist():
    text = DOC.read_text()
    first_install = next(line for line in command_lines() if line.startswith("apt-get install"))
    if re.search(r"^\s*sudo ", text, re.M):
        assert " sudo " in f" {first_install} ", "the document uses sudo: step 1 installs it"
    for tag in re.findall(r"git (?:-C \S+ )?checkout (v\d[\w.]*)", text):
        pytest.fail(f"docs/operations.md names the release tag {tag}, which the repository does not have")
