"""A reader's data as a whole: the copy of it (`export`), its erasure (`erasure`), and how long meter keeps it
(`retention`, the worker's duty). The rights UU PDP (2022) and the GDPR give a reader over their data.

A package of its own, above `accounts` and `amp_readers`, because a reader's data spans them all:
the account, its identities and sessions, the meter's ledger and Redis keys, the outbox.
"""
