"""The publisher's staff: console accounts, separate from readers (one module per concern).

`accounts` (made on the command line, set up from a one-time link, signing in with a password and
an authenticator code), `totp` (the codes and the QR code), `sessions` (the console's sign-ins, ended
after STAFF_IDLE_SECONDS idle and at disable), `roles` (support < editor < owner, per site) and
`audit` (a row for everything done through the console or the staff commands).
"""
