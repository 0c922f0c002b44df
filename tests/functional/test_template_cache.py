"""JINJA_BYTECODE_CACHE: apps made in one process with one cache compile each template once (the
suite's ~500 apps a run rely on it, tests/template_cache.py); without it, nothing is cached."""

from __future__ import annotations

from tests.conftest import rebuilt
from tests.template_cache import TEMPLATES, MemoryBytecodeCache

PAGE = "console/home.html"


def test_apps_given_one_cache_compile_a_template_once(app):
    cache = MemoryBytecodeCache()
    rebuilt(app, JINJA_BYTECODE_CACHE=cache).jinja_env.get_template(PAGE)
    assert cache.code and cache.loads == 0  # compiled, and kept
    rebuilt(app, JINJA_BYTECODE_CACHE=cache).jinja_env.get_template(PAGE)
    assert cache.loads == len(cache.code)  # the second app's came from the cache, its parents' too


def test_the_suites_apps_share_its_cache(app):
    assert app.jinja_env.bytecode_cache is TEMPLATES


def test_without_a_cache_an_app_keeps_no_compiled_templates(app):
    assert rebuilt(app, JINJA_BYTECODE_CACHE=None).jinja_env.bytecode_cache is None
