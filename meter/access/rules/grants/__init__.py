"""Grants: meter's signed word that this reader may read this article now, which a publisher checks offline.

A page that carries the whole article and hides it by script gives it to anyone who turns the script
off or asks meter with `record: false`. With grants, the publisher's server sends the body only to a
request that carries a grant: a compact JWS that meter signs with the site's grant key (`keys`)
when an answer lets the reader read and was counted, or needs no counting (`issue`). The publisher
verifies it with the public keys of the site's JWK Set (`GET /{site}/.well-known/jwks.json`), with
any JWT library, without calling meter per request.
"""
