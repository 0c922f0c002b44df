"""Development tooling, imported only by `make run`, the tests and the benchmarks: never by the served app
(except the demo site, registered only in development or with DEMO_SITE=1).
"""
