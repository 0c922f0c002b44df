/* meter embed: <script src="https://METER/embed/meter.js" data-site="SLUG" async></script>
 * On an article marked <article data-meter-article="ID" data-meter-class="metered|free|premium">
 * with its text in [data-meter-body], asks meter (with meter's own cookies, no API key) whether this
 * reader may read it; counts the view only once the page is shown (never while prerendered); on a
 * refusal hides the body and shows the wall meter sends (texts come localised from meter).
 * Optional: data-lang="id|en" (else <html lang>), data-subscribe-url="https://site/langganan"; on the
 * article, data-meter-section, data-meter-campaign, and data-meter-expires and data-meter-sig: the
 * publisher's signature (docs/api.md). Sends document.referrer (rules by arrival).
 * A logged-in reader gets a link to their account page ("Akun Saya").
 * A page opened from a gift link (?gift=TOKEN) sends that token: the article opens without a wall. A
 * subscriber gets a "Gift this article (N left)" button that makes such a link, to copy.
 * With data-content-url on the article (no body in the page): on an answer with a grant, the body is
 * fetched from there with "Authorization: Bearer <grant>" (docs/api.md). No grant, no fetch.
 * Plain JavaScript, no build step. Fires "meter:answer" on the article with the answer as detail. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || !me.src) return;
  var base = new URL(me.src).origin, site = me.getAttribute("data-site");
  var lang = (me.getAttribute("data-lang") || document.documentElement.lang || "id").slice(0, 2);
  var subscribe = me.getAttribute("data-subscribe-url");
  var here = new URL(location.href), gift = here.searchParams.get("gift");
  here.searchParams.delete("gift"); here.hash = "";
  var css = ".meter-wall{font:16px/1.5 system-ui,sans-serif;border:1px solid #d2d2d7;border-top:4px solid var(--meter-brand,#b00);" +
    "border-radius:6px;padding:1.25rem;margin:1.5rem 0;background:#fff;color:#1d1d1f}" +
    ".meter-wall h2{margin:0 0 .5rem;font-size:1.3rem}.meter-wall .meter-actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:1rem}" +
    ".meter-wall a,.meter-wall button{display:inline-block;padding:.6rem 1.1rem;border-radius:4px;font:600 1rem system-ui,sans-serif;" +
    "text-decoration:none;cursor:pointer;border:1px solid var(--meter-brand,#b00);background:var(--meter-brand,#b00);color:#fff}" +
    ".meter-wall .meter-login,.meter-wall .meter-provider{background:#fff;color:var(--meter-brand,#b00)}" +
    ".meter-wall .meter-providers{flex-basis:100%;display:flex;flex-wrap:wrap;gap:.5rem}.meter-wall button[disabled]{opacity:.6;cursor:not-allowed}" +
    ".meter-wall .meter-lead{align-self:center}.meter-wall .meter-note:empty{display:none}" +
    ".meter-gift{font:15px/1.4 system-ui,sans-serif;margin:1rem 0}.meter-gift button{padding:.5rem 1rem;border-radius:4px;cursor:pointer;" +
    "font:600 .95rem system-ui,sans-serif;border:1px solid var(--meter-brand,#b00);background:#fff;color:var(--meter-brand,#b00)}" +
    ".meter-gift-link{display:flex;gap:.5rem;margin-top:.5rem}.meter-gift-link input{flex:1;min-width:0;font:.9rem monospace;padding:.4rem}" +
    ".meter-gift p{margin:.4rem 0}.meter-banner{font:600 .9rem system-ui,sans-serif;background:#fef7e0;color:#5f4200;padding:.4rem .75rem;border-radius:4px;margin:.5rem 0}" +
    ".meter-account{font:.9rem system-ui,sans-serif;margin:.5rem 0;text-align:right}.meter-account a{color:var(--meter-brand,#b00);font-weight:600}";

  function el(tag, attrs, text) {
    var e = document.createElement(tag), k;
    for (k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }

  function post(path, body) {
    return fetch(base + "/embed/" + encodeURIComponent(site) + path + "?lang=" + encodeURIComponent(lang), {
      method: "POST", credentials: "include", mode: "cors",
      headers: {"Content-Type": "text/plain"},  /* a simple request: no preflight */
      body: JSON.stringify(body || {})
    }).then(function (r) { return r.json().then(function (j) { j.httpStatus = r.status; return j; }); });
  }

  function get(path) {
    return fetch(base + "/embed/" + encodeURIComponent(site) + path + "?lang=" + encodeURIComponent(lang), {
      credentials: "include", mode: "cors"
    }).then(function (r) { return r.json().then(function (j) { j.httpStatus = r.status; return j; }); });
  }

  function copy(input, button, labels) {
    function done() { button.textContent = labels.copied_label; }
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { if (document.execCommand("copy")) done(); });
    } else if (document.execCommand("copy")) { done(); }
  }

  function giftButton(article, body, item) {
    get("/gifts").then(function (g) {
      if (g.httpStatus !== 200) return;
      var box = el("div", {"class": "meter-gift"}), b = el("button", {type: "button", "class": "meter-gift-button"}, g.label);
      box.appendChild(b);
      b.addEventListener("click", function () {
        b.disabled = true;
        post("/gifts", {article: item, url: here.href}).then(function (m) {
          b.disabled = false;
          if (m.httpStatus !== 200 && m.httpStatus !== 201) return;
          b.textContent = m.label;
          var old = box.querySelector(".meter-gift-made"); if (old) box.removeChild(old);
          var made = el("div", {"class": "meter-gift-made"}), row = el("div", {"class": "meter-gift-link"});
          var input = el("input", {type: "text", readonly: "readonly", value: m.url, "aria-label": m.copy_label});
          var c = el("button", {type: "button", "class": "meter-gift-copy"}, m.copy_label);
          c.addEventListener("click", function () { copy(input, c, m); });
          row.appendChild(input); row.appendChild(c);
          made.appendChild(el("p", null, m.message)); made.appendChild(row); box.appendChild(made);
        }, function () { b.disabled = false; });
      });
      (body && body.parentNode ? body.parentNode : article).insertBefore(box, body ? body.nextSibling : null);
    });
  }

  function resendButton(action, note) {
    var b = el("button", {type: "button", "class": "meter-resend"}, action.label);
    b.addEventListener("click", function () {
      b.disabled = true;
      post("/resend", {url: location.href.split("#")[0]}).then(function (a) {  /* the new link returns here */
        note.textContent = a.message || "";
        var left = a.retry_after || 60;
        var t = setInterval(function () {
          left -= 1; b.textContent = action.label + " (" + left + ")";
          if (left <= 0) { clearInterval(t); b.disabled = false; b.textContent = action.label; }
        }, 1000);
      }, function () { b.disabled = false; });
    });
    return b;
  }

  function showWall(article, body, wall) {
    if (body) body.hidden = true;
    var box = el("section", {"class": "meter-wall meter-wall-" + wall.kind, role: "region", "aria-labelledby": "meter-wall-title"});
    box.appendChild(el("h2", {id: "meter-wall-title"}, wall.title));
    box.appendChild(el("p", null, wall.body));
    var row = el("div", {"class": "meter-actions"}), note = el("p", {"class": "meter-note", "aria-live": "polite"});
    var providers = null;  /* "Daftar melalui Google", …: a row of their own below the others */
    wall.actions.forEach(function (a) {
      if (a.kind === "resend") {
        if (a.lead) row.appendChild(el("span", {"class": "meter-lead"}, a.lead));
        row.appendChild(resendButton(a, note)); return;
      }
      var link = el("a", {href: a.url, "class": "meter-" + a.kind}, a.label);
      if (a.kind !== "provider") { row.appendChild(link); return; }
      if (!providers) { providers = el("div", {"class": "meter-providers"}); row.appendChild(providers); }
      link.setAttribute("data-provider", a.provider);
      providers.appendChild(link);
    });
    box.appendChild(row); box.appendChild(note);
    (body && body.parentNode ? body.parentNode : article).insertBefore(box, body || null);
  }

  function showContent(article, body, grant) {
    var url = article.getAttribute("data-content-url");
    if (url && body && grant) fetch(url, {headers: {Authorization: "Bearer " + grant}}).then(function (r) {
      if (r.ok) r.text().then(function (html) { body.innerHTML = html; article.setAttribute("data-meter-content", "shown"); });
    });
  }

  function check(article) {
    var body = article.querySelector("[data-meter-body]");
    var item = {id: article.getAttribute("data-meter-article"), "class": article.getAttribute("data-meter-class") || "metered"};
    var section = article.getAttribute("data-meter-section");
    if (section) item.section = section;
    var campaign = article.getAttribute("data-meter-campaign");
    if (campaign) item.campaign = campaign;
    var sig = article.getAttribute("data-meter-sig"), expires = article.getAttribute("data-meter-expires");
    if (sig) { item.sig = sig; item.expires = parseInt(expires, 10); }
    var req = {article: item, record: !document.prerendering, url: location.href.split("#")[0],
      referrer: document.referrer.slice(0, 2048)};
    if (subscribe) req.subscribe_url = subscribe;
    if (gift) req.gift_token = gift;
    return post("/access", req).then(function (a) {
      if (a.httpStatus !== 200) return;
      article.setAttribute("data-meter-state", a.allowed ? "allowed" : "refused");
      if (a.colour) article.style.setProperty("--meter-brand", a.colour);
      if (!a.allowed && a.wall) showWall(article, body, a.wall);
      else if (a.banner) article.insertBefore(el("p", {"class": "meter-banner", role: "status"}, a.banner), article.firstChild);
      if (a.account) {  /* logged in: a way to "Akun Saya" */
        var line = el("p", {"class": "meter-account"});
        line.appendChild(el("a", {href: a.account.url}, a.account.label));
        article.insertBefore(line, article.firstChild);
      }
      if (a.can_give) giftButton(article, body, item);
      if (a.allowed) showContent(article, body, a.grant);
      article.dispatchEvent(new CustomEvent("meter:answer", {detail: a, bubbles: true}));
      if (!req.record) {  /* prerendered: count it when the reader actually sees the page */
        var later = {article: item, record: true, url: req.url, referrer: req.referrer};
        if (gift) later.gift_token = gift;
        document.addEventListener("prerenderingchange", function () {
          post("/access", later).then(function (b) { if (b.allowed) showContent(article, body, b.grant); });
        }, {once: true});
      }
    });
  }

  function start() {
    if (!site) return;
    var style = el("style", null, css); document.head.appendChild(style);
    Array.prototype.forEach.call(document.querySelectorAll("[data-meter-article]"), check);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
