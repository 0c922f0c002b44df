// A real OpenID Connect provider for meter's tests: panva's oidc-provider (certified), on loopback.
//
//   node server.mjs CONFIG.json
//
// CONFIG: {"port": 0, "clients": [<oidc-provider client metadata>…],
//          "accounts": {"<login>": {"email"?: "…", "email_verified"?: bool, "name"?: "…"}}, "password": "…",
//          "hint"?: "a line shown on the login page (make run's demo accounts)"}
// Prints one line `{"issuer": "http://127.0.0.1:PORT"}` on stdout once it listens; stops on SIGTERM.
//
// No devInteractions: the login and consent pages below are this provider's own interactions (plain
// HTML forms), driven over HTTP by the API-level tests and by Chromium in the browser test. The
// login page also has "Cancel", which ends the interaction with `access_denied`.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import Provider from "oidc-provider";
import { generateKeyPair, exportJWK } from "jose";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = config.accounts || {};
const password = config.password || "pass";

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:24rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1rem;padding:.6rem 1rem;font-size:1rem}</style></head>
<body><h1>${title}</h1>${body}</body></html>`;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function send(res, status, html) {
  res.writeHead(status, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
  res.end(html);
}

async function main() {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(6).toString("hex"), use: "sig", alg: "RS256" };
  const server = createServer();
  await new Promise((resolve) => server.listen(config.port || 0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    // claimsParameter: a publisher's page may ask for the address inside the ID token (POST /v1/sessions);
    // meter's own flow does not, so the provider keeps it out of the ID token and meter asks userinfo.
    features: { devInteractions: { enabled: false }, claimsParameter: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      if (!Object.hasOwn(accounts, sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, ...accounts[sub] };
        },
      };
    },
  });
  const oidc = provider.callback();

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { uid, prompt, params } = details;
    const action = req.url.split("?")[0];
    if (req.method === "GET") {
      if (prompt.name === "login") {
        return send(res, 200, page("Sign in to the test provider", `
<p>Client: <code>${escape(params.client_id)}</code></p>${config.hint ? `<p class="hint">${escape(config.hint)}</p>` : ""}
<form method="post" action="/interaction/${uid}/login">
<label for="login">Login</label><input id="login" name="login" autocomplete="username" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password">
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>`));
      }
      return send(res, 200, page("Allow access", `
<p><code>${escape(params.client_id)}</code> asks for: ${escape(params.scope)}</p>
<form method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Cancel</button></form>`));
    }
    const form = await formBody(req);
    if (action.endsWith("/abort")) {
      return provider.interactionFinished(req, res,
        { error: "access_denied", error_description: "End-User aborted interaction" },
        { mergeWithLastSubmission: false });
    }
    if (action.endsWith("/login")) {
      const login = form.get("login") || "";
      if (!Object.hasOwn(accounts, login) || form.get("password") !== password) {
        return send(res, 401, page("Sign in to the test provider", "<p>Wrong login or password.</p>"));
      }
      return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    }
    if (action.endsWith("/confirm")) {
      const accountId = details.session.accountId;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      if (missing.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(" "));
        }
      }
      const grantId = await grant.save();
      const consent = details.grantId ? {} : { grantId };
      return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    }
    return send(res, 404, page("Not found", ""));
  }

  server.on("request", (req, res) => {
    if (req.url.startsWith("/interaction/")) {
      interaction(req, res).catch((err) => send(res, 400, page("Error", escape(err.message))));
    } else {
      oidc(req, res);
    }
  });
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
  process.stdout.write(JSON.stringify({ issuer }) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
