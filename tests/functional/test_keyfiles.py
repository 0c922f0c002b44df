"""SECRET_KEY_FILE and SECRET_KEY_FALLBACKS_FILE: read when the app is made and again after a fork.

The rotation under load, through gunicorn reloads, is tests/e2e/test_reload.py; here the rules of the
files themselves, in one process.
"""

from __future__ import annotations

import logging

import pytest

from meter import after_fork, create_app
from meter.platform import tokens
from meter.platform.keyfiles import KeyFileError
from tests.conftest import _config_dict

OLD = "old-key-0123456789abcdef"
NEW = "new-key-0123456789abcdef"


def make_app(tmp_path, key: str | None, fallbacks: str | None, **extra):
    """An app whose keys come from files holding `key` and `fallbacks` (None: that file is not set)."""
    config = {**_config_dict(), "SECRET_KEY": None, "SECRET_KEY_FALLBACKS": [], "REDIS_URL": "redis://127.0.0.1:1/0"}
    config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    if key is not None:
        (tmp_path / "secret_key").write_text(key)
        config["SECRET_KEY_FILE"] = str(tmp_path / "secret_key")
    if fallbacks is not None:
        (tmp_path / "fallbacks").write_text(fallbacks)
        config["SECRET_KEY_FALLBACKS_FILE"] = str(tmp_path / "fallbacks")
    return create_app({**config, **extra})


def sign(app, payload: dict) -> str:
    with app.app_context():
        return tokens.make(tokens.READER, payload)


def verdict(app, token: str) -> str:
    with app.app_context():
        try:
            tokens.load(tokens.READER, token)
        except tokens.TokenError as exc:
            return exc.kind
        return "valid"


def test_the_key_and_its_fallbacks_come_from_the_files(tmp_path):
    app = make_app(tmp_path, f"# current\n\n{NEW}\n", f"# still accepted\n{OLD}\n  \nolder-key-0123456789abcdef\n")
    assert app.config["SECRET_KEY"] == NEW
    assert app.config["SECRET_KEY_FALLBACKS"] == [OLD, "older-key-0123456789abcdef"]


def test_a_rotation_is_edit_the_files_then_a_new_process_reads_them(tmp_path):
    app = make_app(tmp_path, OLD, "")
    old_token = sign(app, {"r": 1})
    assert verdict(app, old_token) == "valid"

    (tmp_path / "secret_key").write_text(NEW + "\n")
    (tmp_path / "fallbacks").write_text(OLD + "\n")
    assert verdict(app, old_token) == "valid"  # nothing re-read yet: the old key still signs
    after_fork(app)  # what every new gunicorn worker does first
    assert app.config["SECRET_KEY"] == NEW
    new_token = sign(app, {"r": 2})
    assert verdict(app, new_token) == "valid"
    assert verdict(app, old_token) == "valid"  # the old key is a fallback

    (tmp_path / "fallbacks").write_text("")
    after_fork(app)
    assert verdict(app, old_token) == "invalid"  # refused once the old key is gone
    assert verdict(app, new_token) == "valid"


def test_a_broken_file_at_a_reload_keeps_the_keys_and_says_why(tmp_path, caplog):
    app = make_app(tmp_path, OLD, "")
    token = sign(app, {"r": 1})
    (tmp_path / "secret_key").write_text(f"{NEW}\n{OLD}\n")  # two keys: which one signs?
    with caplog.at_level(logging.ERROR, logger="meter"):
        after_fork(app)
    assert app.config["SECRET_KEY"] == OLD and verdict(app, token) == "valid"
    assert "exactly one key" in caplog.text
    (tmp_path / "secret_key").unlink()
    with caplog.at_level(logging.ERROR, logger="meter"):
        after_fork(app)
    assert app.config["SECRET_KEY"] == OLD and "cannot read key file" in caplog.text


@pytest.mark.parametrize(
    ("key", "fallbacks", "extra", "message"),
    [
        ("", None, {}, "exactly one key, it holds 0"),
        ("# only a comment\n", None, {}, "exactly one key, it holds 0"),
        (f"{NEW}\n{OLD}", None, {}, "exactly one key, it holds 2"),
        ("short", None, {}, "shorter than 16"),
        (NEW, "short\n", {}, "shorter than 16"),
        (NEW, None, {"SECRET_KEY": "also-set-in-the-environment"}, "both set"),
        (NEW, OLD, {"SECRET_KEY_FALLBACKS": ["also-in-the-environment"]}, "both set"),
        (None, None, {"SECRET_KEY_FILE": "/nonexistent/secret_key"}, "cannot read key file"),
    ],
)
def test_the_app_refuses_to_start_on_a_bad_key_file(tmp_path, key, fallbacks, extra, message):
    with pytest.raises(KeyFileError, match=message):
        make_app(tmp_path, key, fallbacks, **extra)


def test_a_key_file_readable_by_everyone_is_warned_about(tmp_path, caplog):
    (tmp_path / "secret_key").write_text(NEW)
    (tmp_path / "secret_key").chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="meter"):
        make_app(tmp_path, None, None, SECRET_KEY_FILE=str(tmp_path / "secret_key"))
    assert "readable by every user" in caplog.text
