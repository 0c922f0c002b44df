# meter: `make run` starts everything for development; `make check` runs the fast tier, `make test` the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run check test lint format clean chromium nginx oidc php promtool htmlvalidate spamassassin wrk soak bench

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Everything for development on http://127.0.0.1:5000 (Redis, mail catcher, mail worker, gunicorn);
# data kept in instance/. Another port: make run PORT=5001. Ctrl-C stops it all.
run: $(STAMP) oidc
	$(PY) -m meter.dev.devserver $(if $(PORT),--port $(PORT))

# ruff, then import-linter: the layers of meter/ and no import cycle (contracts in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The suite runs on every core (pytest-xdist; PYTEST_WORKERS=1 for one process), one worker more than
# there are cores: its tests wait on sockets and subprocesses about as much as they compute. Each worker
# starts its own redis-server and SMTP server; the tests of one Chromium or one Redis Cluster stay in one worker.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
XDIST := -n $(PYTEST_WORKERS) --dist loadgroup
# The slow tier: tests marked browser, cluster, servers (subprocess gunicorn, nginx, make run), fuzz, soak.
SLOW := browser or cluster or servers or fuzz or soak

# The fast tier while you work (lint, then tests/unit and tests/functional less what is marked slow, on
# SQLite): about a minute. tests/e2e (browser, gunicorn, nginx, cluster, the OpenID provider) runs in `make test`.
check: lint htmlvalidate
	$(PY) -m pytest -p no:cacheprovider $(XDIST) -m "not ($(SLOW))" tests/unit tests/functional

# The whole suite on SQLite; then again on PostgreSQL where one answers (CI here: 127.0.0.1:5432; each
# worker uses a database of its own beside PG_TEST_URL's, test_gw0, test_gw1…, made when missing): the
# tests that use the database, less those marked database_agnostic (tests/conftest.py says why).
# Without one, the PostgreSQL pass is skipped and says so.
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

# The browser tests drive Debian's Chromium; install it where we can (root with apt-get), else they skip and say so.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing Chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			|| echo "== Chromium could not be installed: the browser tests will be skipped"; \
	fi

# The deployment test (tests/e2e/test_nginx.py) runs Debian's nginx in front of gunicorn; install it where we
# can (root with apt-get), else that test is skipped and says so.
nginx:
	@if [ ! -x /usr/sbin/nginx ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing nginx-light for the deployment test (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
			|| echo "== nginx could not be installed: the deployment test will be skipped"; \
	fi

# The social-login tests run a real OpenID provider (panva's oidc-provider, tests/oidc/) on Node: installed
# from its lock file when Node is there (again only when the lock file changed), else those tests skip and say so.
oidc:
	@if ! command -v npm >/dev/null; then \
		echo "== Node.js/npm not found: the OpenID provider tests (tests/e2e/test_social_oidc.py, browser) will be skipped"; \
	elif [ ! tests/oidc/node_modules/.package-lock.json -nt tests/oidc/package-lock.json ]; then \
		echo "== installing the test OpenID provider (npm ci in tests/oidc)"; \
		(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error) \
			|| echo "== tests/oidc could not be installed: the OpenID provider tests will be skipped"; \
	fi

# The mail tests validate every mail's HTML with html-validate (tests/htmlvalidate/, on Node): installed from
# its lock file when Node is there (again only when the lock file changed), else that test skips and says so.
htmlvalidate:
	@if ! command -v npm >/dev/null; then \
		echo "== Node.js/npm not found: the mails' html-validate test (tests/functional/test_mail_layout.py) will be skipped"; \
	elif [ ! tests/htmlvalidate/node_modules/.package-lock.json -nt tests/htmlvalidate/package-lock.json ]; then \
		echo "== installing html-validate for the mail tests (npm ci in tests/htmlvalidate)"; \
		(cd tests/htmlvalidate && npm ci --no-audit --no-fund --loglevel=error) \
			|| echo "== tests/htmlvalidate could not be installed: the mails' html-validate test will be skipped"; \
	fi

# Every mail kind is scored by SpamAssassin's stock rules (tests/e2e/test_mail_spam.py, slow tier) with Debian's
# spamassassin; install it where we can (root with apt-get), else that test is skipped and says so.
spamassassin:
	@if ! command -v spamassassin >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing spamassassin for the mails' spam score test (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spamassassin >/dev/null \
			|| echo "== spamassassin could not be installed: the mails' spam score test will be skipped"; \
	fi

# The PHP examples of docs/api.md (tests/e2e/test_docs_examples.py) run on Debian's php-cli with its curl
# extension; install them where we can (root with apt-get), else that test is skipped and says so.
php:
	@if ! command -v php >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing php-cli and php-curl for the PHP examples of docs/api.md (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq php-cli php-curl >/dev/null \
			|| echo "== php could not be installed: the PHP examples will be skipped"; \
	fi

# The monitoring files (tests/functional/test_monitoring.py) are checked by Prometheus's promtool, from Debian's
# prometheus package; installed where we can (root with apt-get), else that test is skipped and says so.
promtool:
	@if ! command -v promtool >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing promtool (Debian's prometheus package) for the monitoring files' checks (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
			|| echo "== promtool could not be installed: the monitoring checks will be skipped"; \
	fi

# The floor bench's test (tests/e2e/test_bench.py) drives gunicorn with Debian's wrk; installed where we can
# (root with apt-get), else that test is skipped and says so.
wrk:
	@if ! command -v wrk >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "== installing wrk for the floor bench's test (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
			|| echo "== wrk could not be installed: the floor bench's test will be skipped"; \
	fi

test: lint chromium nginx oidc php promtool htmlvalidate spamassassin wrk
	$(PY) -m pytest $(XDIST)
	@if $(PY) -c "import sqlalchemy as s; s.create_engine('$(PG_TEST_URL)', connect_args={'connect_timeout': 3}).connect().close()" 2>/dev/null; then \
		echo "== the suite again on PostgreSQL ($(PG_TEST_URL))"; \
		METER_TEST_DATABASE_URL=$(PG_TEST_URL) $(PY) -m pytest -p no:cacheprovider $(XDIST); \
	else \
		echo "== PostgreSQL not reachable at $(PG_TEST_URL): PostgreSQL pass SKIPPED (SQLite pass above is complete)"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# A bounded soak (60 s of mixed traffic against gunicorn on loopback): zero 5xx, mail worker RSS flat
# within 10%. Starts and stops its own redis-server, SMTP server, gunicorn and mail worker.
SOAK_SECONDS ?= 60
soak: $(STAMP)
	$(PY) -m tests.soak --seconds $(SOAK_SECONDS)
# The access check vs hello-world (wrk + gunicorn), Redis memory per reader, registration with a
# slow SMTP server. Writes bench/results.json, bench/results.png, bench/memory.json, bench/mail.json.
# wrk comes from Debian's packages (installed here when missing and root); matplotlib and py-spy from
# requirements-bench.txt, which `make test` never installs.
bench: $(STAMP)
	@command -v wrk >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; \
		else echo "wrk is missing: apt-get install wrk (as root)"; exit 1; fi; }
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.floor --shaped
	$(PY) -m bench.served --replay
	$(PY) -m bench.memory
	$(PY) -m bench.mail
