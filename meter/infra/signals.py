"""Blinker signals, so tests and integrations can hook the flows without patching them."""

from blinker import Namespace

_signals = Namespace()

reader_registered = _signals.signal("reader-registered")
reader_activated = _signals.signal("reader-activated")
activation_sent = _signals.signal("activation-sent")
password_reset = _signals.signal("password-reset")
session_created = _signals.signal("session-created")
signed_in = _signals.signal("signed-in")  # a login (not an activation or reset): method = "password" or a provider
subscription_started = _signals.signal("subscription-started")
gift_made = _signals.signal(
    "gift-made"
)  # site_id: a subscriber gave an article (counted in the figures)  # a reader who was not a subscriber became one
article_unlocked = _signals.signal("article-unlocked")
mail_queued = _signals.signal("mail-queued")
