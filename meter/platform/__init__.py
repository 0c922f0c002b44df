"""What meter runs on: the database and its models, Redis and its key names, mail, logs, metrics, the clock.

Nothing here imports the domain or the web layer; Redis reports its failures through a callback.
"""
