"""CSRF tokens on every HTML form (Flask-WTF); the JSON API, the embed and AMP are exempt by blueprint."""

from flask_wtf import CSRFProtect

csrf = CSRFProtect()
