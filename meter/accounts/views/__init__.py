"""A reader's account over HTTP: the reader pages (`pages`, and `account_page`, "Akun Saya", on the
same blueprint) and the account calls of the JSON API (`api`, `api_me`, `api_readers`)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """The reader pages' blueprint, with the account page's routes on it."""
    from meter.accounts.views import account_page, pages  # noqa: F401  (account_page's routes register on import)

    pages.init_app(app)
