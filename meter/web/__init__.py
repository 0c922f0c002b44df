"""HTTP: the JSON API (/v1), the reader pages, the embed, AMP, and the operations routes.

Every answer finishes in `http` (request id, security headers, log line); the access answers are built
once in `access_answers` and served by Flask or, faster, by the hot WSGI entry `hot`.
"""
