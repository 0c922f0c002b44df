"""Webhooks: a site's other systems (its CRM, its mailing list, billing) hear what happens to its readers.

Standard Webhooks, version 1 (standardwebhooks.com), so a receiver verifies them with that project's
libraries in any language: a JSON body {"type", "timestamp", "data"} and the headers `webhook-id`,
`webhook-timestamp` and `webhook-signature` ("v1," + base64 of HMAC-SHA256 over "id.timestamp.body"
with the secret's bytes; during a rotation both secrets' signatures, space-separated).

- `endpoints`: a site's endpoints (add, list, remove, rotate the secret, enable, ping), secrets sealed at rest;
- `meter.webhooks.rules.outbox`: the flows add their events there, in the transaction of the change;
- `delivery`: the worker's duty: sign, send, retry with backoff for about 3 days, disable what is gone;
- `transport`: the one HTTP request, which cannot be pointed at meter's own network.
The event types and their data: docs/api.md ("Webhooks").
"""
