"""SECRET_KEY_FILE and SECRET_KEY_FALLBACKS_FILE: the signing keys read from files, one key a line.

Why files: a process's environment is fixed when it starts, so a key given in SECRET_KEY changes
only with a restart, and a restart drops requests. A file is read again whenever a process asks:
every new gunicorn worker does (`meter.after_fork`, called by deploy/gunicorn.conf.py), so a
rotation is "edit the files, reload (HUP)", and the old workers finish their requests meanwhile.

Format: one key a line; blank lines and lines starting with `#` are ignored. SECRET_KEY_FILE holds
exactly one key; SECRET_KEY_FALLBACKS_FILE any number (the old keys still accepted). A file and its
variable set together are refused: which one counts would be a guess.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import MutableMapping
from typing import Any

from meter.platform.settings import ConfigError

log = logging.getLogger(__name__)

MIN_KEY_LENGTH = 16  # a key file holding "changeme" is a mistake worth refusing


class KeyFileError(ConfigError):
    """A key file is missing, unreadable, empty where a key is needed, or contradicts its variable."""


def read_keys(path: str) -> list[str]:
    """The keys of a key file, in order (blank lines and # comments skipped)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        mode = os.stat(path).st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    if mode & stat.S_IROTH:
        log.warning("key file %s is readable by every user: chmod o-r it", path)
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    for key in keys:
        if len(key) < MIN_KEY_LENGTH:
            raise KeyFileError(f"key file {path} holds a key shorter than {MIN_KEY_LENGTH} characters")
    return keys


def check_exclusive(config: MutableMapping[str, Any]) -> None:
    """A file and its variable set together: refused (called once, when the app is made)."""
    if config.get("SECRET_KEY_FILE") and config.get("SECRET_KEY"):
        raise KeyFileError("SECRET_KEY and SECRET_KEY_FILE are both set: keep one")
    if config.get("SECRET_KEY_FALLBACKS_FILE") and config.get("SECRET_KEY_FALLBACKS"):
        raise KeyFileError("SECRET_KEY_FALLBACKS and SECRET_KEY_FALLBACKS_FILE are both set: keep one")


def load(config: MutableMapping[str, Any]) -> bool:
    """Read the configured key files into SECRET_KEY and SECRET_KEY_FALLBACKS; True if a key changed.

    Both files are read before anything is changed, so a failure (KeyFileError) leaves the keys as
    they were.
    """
    key_path, fallbacks_path = config.get("SECRET_KEY_FILE"), config.get("SECRET_KEY_FALLBACKS_FILE")
    key = config.get("SECRET_KEY")
    fallbacks = list(config.get("SECRET_KEY_FALLBACKS") or [])
    if key_path:
        keys = read_keys(key_path)
        if len(keys) != 1:
            raise KeyFileError(f"SECRET_KEY_FILE {key_path} must hold exactly one key, it holds {len(keys)}")
        key = keys[0]
    if fallbacks_path:
        fallbacks = read_keys(fallbacks_path)
    changed = key != config.get("SECRET_KEY") or fallbacks != list(config.get("SECRET_KEY_FALLBACKS") or [])
    config["SECRET_KEY"], config["SECRET_KEY_FALLBACKS"] = key, fallbacks
    return changed
