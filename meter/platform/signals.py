"""Blinker signals: what the account flows, subscriptions, gifts and the mail outbox tell the parts that
react to them (the figures, `meter.stats`; the metrics, `meter.ops`; the login limits, which a password
reset lifts, `meter.accounts.rate_limits`; `flask demo traffic`, which drops its made-up readers'
mail), without those flows importing them. Each signal here has a listener; one that loses its last
listener goes with it.
"""

from blinker import Namespace

_signals = Namespace()

reader_registered = _signals.signal("reader-registered")
reader_activated = _signals.signal("reader-activated")
password_reset = _signals.signal("password-reset")
# A login (not an activation or reset): method = "password" or the provider's name; created: a new reader.
reader_signed_in = _signals.signal("reader-signed-in")
subscription_started = _signals.signal("subscription-started")  # a reader who was not a subscriber became one
gift_made = _signals.signal("gift-made")  # site_id: a subscriber gave an article (counted in the figures)
mail_queued = _signals.signal("mail-queued")
