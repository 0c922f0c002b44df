"""A small local STAND-IN for Sign in with Apple and Facebook Login, speaking their documented protocols.

Neither can be run locally, so this HTTP server on loopback plays their parts, and checks what meter
sends as strictly as they do. Everything here is a stand-in; meter's code under test is the real one
(Authlib's client, the same as against Google and the real OpenID provider of tests/oidc/).

Apple (under /apple, the issuer meter is pointed at with APPLE_ISSUER):
- `/.well-known/openid-configuration`, `/auth/keys` (JWKS): as Apple publishes them.
- `/auth/authorize`: instead of Apple's sign-in screen, the account the test chose in `apple_user`
  "signs in"; the answer is Apple's `response_mode=form_post`: an HTML form that POSTs `code` and
  `state` (or `error=user_cancelled_authorize`) to the redirect URI.
- `/auth/token`: checks the client secret as Apple does (an ES256 JWT whose header kid is the key
  id, with iss = team id, sub = client id, aud = the issuer, not expired, signed by the private key
  whose public half Apple holds), the code, the redirect URI and the PKCE verifier; answers an ID
  token signed RS256 with `email_verified` as the string "true", as Apple sends it.

Facebook (under /facebook, FACEBOOK_DIALOG_URL and FACEBOOK_GRAPH_URL):
- `/dialog/oauth`: the account in `facebook_user` consents; a redirect with `code` and `state`.
- `/graph/oauth/access_token`: the client id and secret (in the body), code, redirect URI, PKCE.
- `/graph/me?fields=id,name,email`: the bearer token and `appsecret_proof` (HMAC-SHA256 of the
  token with the app secret) checked; `email` only when the account has one.

Also an OpenID issuer under /oidc whose keys the tests sign with, to forge ID tokens (expired, wrong
audience, bad signature) for `POST /v1/sessions`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from meter.dev.redis_server import free_port


@lru_cache(maxsize=1)
def _signing_key() -> RSAKey:
    """One RSA key for every stand-in of a run (making one costs a noticeable part of a second)."""
    return RSAKey.generate_key(2048, parameters={"kid": "standin-1", "use": "sig", "alg": "RS256"})


def pkce_ok(verifier: str | None, challenge: str | None) -> bool:
    if challenge is None:
        return verifier is None
    if not verifier:
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(digest, challenge)


class StandIn:
    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.signing = _signing_key()
        # Apple: the key pair of a Sign in with Apple key; meter gets the private half (the .p8 file).
        self.apple_key = ECKey.generate_key("P-256", private=True)
        self.apple = {"team_id": "TEAM123456", "key_id": "KEY1234567", "client_id": "co.tempo.signin"}
        self.facebook = {"client_id": "fb-app-1", "client_secret": "fb-app-secret"}
        self.apple_user: dict = {"sub": "001234.apple", "email": "apple.reader@example.com", "email_verified": "true"}
        self.facebook_user: dict = {"id": "10001", "name": "Pembaca", "email": "fb.reader@example.com"}
        self.apple_token_claims: dict = {}  # claims to put into (or over) the next ID tokens: the tests' forgeries
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> StandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def apple_private_pem(self) -> str:
        return self.apple_key.as_pem(private=True).decode()

    # --- tokens the tests forge with the stand-in's own key ------------------------------------------

    def id_token(self, issuer: str, audience: str, subject: str, *, expires_in: int = 300, **claims) -> str:
        now = int(time.time())
        payload = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "exp": now + expires_in, **claims}
        return jwt.encode({"alg": "RS256", "kid": self.signing.kid}, payload, self.signing)

    def jwks(self) -> dict:
        return KeySet([self.signing]).as_dict(private=False)

    # --- the HTTP side ----------------------------------------------------------------------------

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: dict) -> None:
                self._send(status, json.dumps(data).encode(), "application/json")

            def _params(self) -> dict[str, str]:
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                if self.command == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length).decode()
                    query.update({k: v[0] for k, v in parse_qs(body).items()})
                return query

            def do_GET(self) -> None:
                standin.seen.append(("GET", urlsplit(self.path).path))
                standin.route(self)

            def do_POST(self) -> None:
                standin.seen.append(("POST", urlsplit(self.path).path))
                standin.route(self)

        return Handler

    def route(self, h) -> None:
        path = urlsplit(h.path).path
        p = h._params()
        routes = {
            "/apple/.well-known/openid-configuration": self._apple_discovery,
            "/apple/auth/keys": lambda h, p: h._json(200, self.jwks()),
            "/apple/auth/authorize": self._apple_authorize,
            "/apple/auth/token": self._apple_token,
            "/oidc/.well-known/openid-configuration": self._oidc_discovery,
            "/oidc/jwks": lambda h, p: h._json(200, self.jwks()),
            # a discovery document that names another issuer (a mix-up, or a hijacked path)
            "/liar/.well-known/openid-configuration": lambda h, p: h._json(
                200, {"issuer": "https://accounts.google.com", "authorization_endpoint": f"{self.base}/liar/auth"}
            ),
            "/facebook/dialog/oauth": self._facebook_dialog,
            "/facebook/graph/oauth/access_token": self._facebook_token,
            "/facebook/graph/me": self._facebook_me,
        }
        handler = routes.get(path)
        if handler is None:
            h._json(404, {"error": "not_found"})
        else:
            handler(h, p)

    # Apple

    def _apple_discovery(self, h, p) -> None:
        issuer = f"{self.base}/apple"
        h._json(
            200,
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/auth/authorize",
                "token_endpoint": f"{issuer}/auth/token",
                "jwks_uri": f"{issuer}/auth/keys",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "name"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            },
        )

    def _apple_authorize(self, h, p) -> None:
        if p.get("client_id") != self.apple["client_id"] or p.get("response_mode") != "form_post":
            h._json(400, {"error": "invalid_request"})
            return
        fields = {"state": p.get("state", "")}
        if self.apple_user.get("cancel"):
            fields["error"] = "user_cancelled_authorize"
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"kind": "apple", "params": p, "user": dict(self.apple_user)}
            fields["code"] = code
        inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items())
        page = (
            f'<!doctype html><form id="post" method="post" action="{html.escape(p["redirect_uri"])}">{inputs}'
            '<button type="submit">Continue</button></form><script>document.getElementById("post").submit()</script>'
        )
        h._send(200, page.encode(), "text/html")

    def _apple_client_secret_ok(self, secret: str) -> bool:
        try:
            token = jwt.decode(secret, self.apple_key)  # verified with the key pair's public half
        except Exception:  # noqa: BLE001
            return False
        claims, now = token.claims, time.time()
        return (
            token.header.get("alg") == "ES256"
            and token.header.get("kid") == self.apple["key_id"]
            and claims.get("iss") == self.apple["team_id"]
            and claims.get("sub") == self.apple["client_id"]
            and claims.get("aud") == f"{self.base}/apple"
            and claims.get("iat", now + 1) <= now + 5
            and now < claims.get("exp", 0) <= now + 180 * 86400
        )

    def _apple_token(self, h, p) -> None:
        if p.get("client_id") != self.apple["client_id"] or not self._apple_client_secret_ok(
            p.get("client_secret", "")
        ):
            h._json(400, {"error": "invalid_client"})
            return
        grant = self.codes.pop(p.get("code", ""), None)
        if (
            grant is None
            or grant["kind"] != "apple"
            or p.get("redirect_uri") != grant["params"].get("redirect_uri")
            or not pkce_ok(p.get("code_verifier"), grant["params"].get("code_challenge"))
        ):
            h._json(400, {"error": "invalid_grant"})
            return
        user = grant["user"]
        claims = {
            "email": user.get("email"),
            "email_verified": user.get("email_verified"),
            "auth_time": int(time.time()),
        }
        if grant["params"].get("nonce"):
            claims["nonce"] = grant["params"]["nonce"]
        forged = {"iss": f"{self.base}/apple", "aud": self.apple["client_id"], **self.apple_token_claims}
        id_token = self.id_token(forged.pop("iss"), forged.pop("aud"), user["sub"], **{**claims, **forged})
        h._json(
            200,
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": id_token,
            },
        )

    # a generic issuer for forged ID tokens

    def _oidc_discovery(self, h, p) -> None:
        issuer = f"{self.base}/oidc"
        h._json(
            200,
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "none", "HS256"],  # a careless provider
            },
        )

    # Facebook

    def _facebook_dialog(self, h, p) -> None:
        if p.get("client_id") != self.facebook["client_id"]:
            h._json(400, {"error": "invalid client_id"})
            return
        target = p["redirect_uri"]
        if self.facebook_user.get("cancel"):
            query = {"error": "access_denied", "error_reason": "user_denied", "state": p.get("state", "")}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"kind": "facebook", "params": p, "user": dict(self.facebook_user)}
            query = {"code": code, "state": p.get("state", "")}
        h._send(302, b"", "text/plain", {"Location": f"{target}?{urlencode(query)}"})

    def _facebook_token(self, h, p) -> None:
        if p.get("client_id") != self.facebook["client_id"] or p.get("client_secret") != self.facebook["client_secret"]:
            h._json(400, {"error": {"message": "Error validating client secret.", "type": "OAuthException"}})
            return
        grant = self.codes.pop(p.get("code", ""), None)
        if (
            grant is None
            or grant["kind"] != "facebook"
            or p.get("redirect_uri") != grant["params"].get("redirect_uri")
            or not pkce_ok(p.get("code_verifier"), grant["params"].get("code_challenge"))
        ):
            h._json(400, {"error": {"message": "This authorization code has been used.", "type": "OAuthException"}})
            return
        token = secrets.token_urlsafe(24)
        self.tokens[token] = grant["user"]
        h._json(200, {"access_token": token, "token_type": "bearer", "expires_in": 5183944})

    def _facebook_me(self, h, p) -> None:
        auth = h.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").removeprefix("bearer ")
        user = self.tokens.get(token)
        proof = hmac.new(self.facebook["client_secret"].encode(), token.encode(), hashlib.sha256).hexdigest()
        if user is None or not hmac.compare_digest(p.get("appsecret_proof", ""), proof):
            h._json(400, {"error": {"message": "Invalid appsecret_proof", "type": "OAuthException"}})
            return
        fields = set(p.get("fields", "id").split(","))
        h._json(200, {k: v for k, v in user.items() if k in fields and v is not None})
