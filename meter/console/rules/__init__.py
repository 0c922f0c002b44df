"""What the publisher console does to a site, without HTTP: one module per page's concern.

`readers` (find a reader, everything about one, the support actions), `bulk` (resend the activation
mail to every unverified reader since a date, worked through by the worker), `outbox` (the site's
mail backlog and dead letters), `site_admin` (the policy with its change shown first, origins, keys).
Every change here writes its audit row (meter.console.rules.audit) in the same transaction.
"""
