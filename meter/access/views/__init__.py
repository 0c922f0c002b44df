"""The access check over HTTP, one pipeline for every way it is asked:

- `POST /v1/access` (`api`): the publisher's server, with the site's API key;
- `POST /embed/<site>/access` (`embed`): meter.js in the reader's browser, with meter's cookies;
- `GET /amp/<site>/authorization` and `POST /amp/<site>/pingback` (`amp`): AMP pages.

Each handler takes the request's inputs (`exchange.Incoming`) and returns status, headers and bytes
(`exchange.Answer`) for every outcome, refusals included. Flask serves them through the views
below; the hot WSGI entry (`hot`) serves the same handlers without Flask's per-request machinery,
because these run on every article view. Either way `meter.platform.http` adds the common headers and
writes the log line, so nothing about an answer is written twice.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, g, request

from meter.access.views.hot import HotEntry
from meter.access.views.routes import ROUTES, Route, incoming_of, serve
from meter.platform.csrf import csrf

bp = Blueprint("access", __name__)


def respond(route: Route, params: dict[str, str]) -> Response:
    """The Flask adapter: the route's answer as a Flask response (http.py's after-request finishes it)."""
    answer = serve(route, incoming_of(request.environ, current_app.config["MAX_CONTENT_LENGTH"]), params)
    g.site_slug = answer.site_slug
    response = Response(answer.body, answer.status, headers=answer.headers)
    if answer.mimetype:
        response.mimetype = answer.mimetype
    else:
        del response.headers["Content-Type"]
    return response


def _view(route: Route):
    def view(**params: str) -> Response:
        return respond(route, params)

    view.__name__ = route.endpoint
    view.openapi = getattr(route.handler, "openapi", {})  # type: ignore[attr-defined]  (its description)
    return view


for _route in ROUTES:
    bp.add_url_rule(_route.rule, _route.endpoint, _view(_route), methods=list(_route.methods))


def init_app(app: Flask) -> None:
    csrf.exempt(bp)  # API keys, the Origin check and AMP's CORS stand in for CSRF tokens here
    app.register_blueprint(bp)
    app.wsgi_app = HotEntry(app, app.wsgi_app)  # type: ignore[method-assign]
