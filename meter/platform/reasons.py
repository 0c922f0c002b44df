"""Every reason an access answer can give: the API's `reason`, its enum in /openapi.json, the figures' views.

One list, so that a new reason (a gift, a crawler) is added once and every place that names reasons
follows it.
"""

ALLOWED_REASONS = (
    "free_content",
    "subscriber",
    "already_unlocked",
    "unlocked_now",
    "would_unlock",
    "degraded_allow",
    "gift",  # a gift link for this article (meter.gifts.rules)
    "crawler",  # a verified search engine crawler (meter.access.rules.crawlers)
)
REFUSED_REASONS = (
    "quota_exhausted",
    "subscription_required",
    "registration_required",
    "verification_required",
    "degraded_deny",
    "preview",  # a link-preview fetcher: never the body, never counted
)
REASONS = ALLOWED_REASONS + REFUSED_REASONS
# The figures count recording answers only: a `would_unlock` (record false) is never one.
VIEW_REASONS = tuple(reason for reason in REASONS if reason != "would_unlock")
