"""Entry point for gunicorn (`gunicorn wsgi:app`) and the flask command (`FLASK_APP=wsgi`, bin/meter).

A configuration error stops either with one line naming the setting and its fix (meter.app_or_exit).
"""

from meter import app_or_exit

app = app_or_exit()
