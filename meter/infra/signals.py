"""Blinker signals, so tests and integrations can hook the flows without patching them."""

from blinker import Namespace

_signals = Namespace()

reader_registered = _signals.signal("reader-registered")
reader_activated = _signals.signal("reader-activated")
activation_sent = _signals.signal("activation-sent")
password_reset = _signals.signal("password-reset")
session_created = _signals.signal("session-created")
# A reader signed in with another account (method = the provider's name; created: a new reader).
reader_signed_in = _signals.signal("reader-signed-in")
article_unlocked = _signals.signal("article-unlocked")
mail_queued = _signals.signal("mail-queued")
