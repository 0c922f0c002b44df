"""Gift articles: a subscriber gives an article; whoever opens the link reads it, without a wall and
without spending their own free articles, on at most `gifts.devices` devices, for `gifts.days`.

By concern: `links` (the token and the URL that carries it), `store` (SQL, the truth: giving,
listing, revoking), `hot` (a gifted read: one Redis script, `gift.lua`, on the gift's own keys).
"""

from importlib import resources

from meter.platform.redis_conn import register_script

register_script("gift", resources.files(__package__).joinpath("gift.lua"))
