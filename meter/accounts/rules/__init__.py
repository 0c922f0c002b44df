"""Reader accounts, one module per flow (as in Flask-Security): register, confirm, sessions, recover.

These functions hold the rules; the JSON API (`meter.api`) and the reader pages call them.
"""
