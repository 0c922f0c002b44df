"""Sign-in with other accounts ("atau Masuk melalui"): the providers a site offers and the account rules.

- `providers`: a site's providers (Google, Apple, Facebook, any OpenID Connect issuer), their
  secrets sealed at rest (`sealing`), cached per process like sites.
- `state`: a started sign-in's state, kept server-side in Redis, used once, bound to the browser.
- `accounts`: what an identity at a provider means for the site's readers (the contract's rules:
  known identity, verified address, the take-over of an unverified account, the ask-for-an-address
  path with its activation mail).
- `id_tokens`: the checks every ID token passes, whichever route brought it.

The HTTP side (Authlib's Flask client, the pages, the API) is `meter.social.views.pages`.
"""
