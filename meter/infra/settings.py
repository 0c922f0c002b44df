"""ConfigError: a setting that is missing or cannot be used, found while the app is made.

Its message is one line that names the setting and says how to fix it. The entry points
(`meter.app_or_exit`, used by wsgi.py for gunicorn and the `flask` command, and bin/meter) print it
and exit non-zero instead of showing a traceback: an operator reads the fix, not a stack.
"""

from __future__ import annotations


class ConfigError(RuntimeError):
    """A setting that is missing or malformed (the message: one line, the setting and the fix)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the cause's text held
