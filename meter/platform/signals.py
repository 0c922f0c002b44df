"""Blinker signals, so tests and integrations can hook the flows without patching them."""

from blinker import Namespace

_signals = Namespace()

reader_registered = _signals.signal("reader-registered")
reader_activated = _signals.signal("reader-activated")
activation_sent = _signals.signal("activation-sent")
password_reset = _signals.signal("password-reset")
password_changed = _signals.signal("password-changed")  # by the reader, with the current password
reader_deleted = _signals.signal("reader-deleted")  # site_id, reader_id, why: "reader" | "operator" | "retention"
session_created = _signals.signal("session-created")
# A login (not an activation or reset): method = "password" or the provider's name; created: a new reader.
reader_signed_in = _signals.signal("reader-signed-in")
subscription_started = _signals.signal("subscription-started")  # a reader who was not a subscriber became one
gift_made = _signals.signal("gift-made")  # site_id: a subscriber gave an article (counted in the figures)
article_unlocked = _signals.signal("article-unlocked")
mail_queued = _signals.signal("mail-queued")
