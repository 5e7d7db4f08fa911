/* Flattr Hub button: turns every
 *   <a class="FlattrButton" href="URL" data-flattr-uid="NAME" data-flattr-url="URL"
 *      data-flattr-title data-flattr-description data-flattr-category data-flattr-language
 *      data-flattr-tags data-flattr-hidden>description</a>
 * (or Flattr's older rel="flattr;uid:NAME;category:text;" form) into a Flattr button with a
 * live counter. Defaults for every button can be given on the script's own URL:
 *   <script src="https://HUB/js/button.js?uid=NAME&category=text&language=en_GB" async>
 * A click opens the hub's auto-submit page (the thing is created on its first flattr).
 * The counter is read with credentials "omit": the button sets and sends no cookie.
 * FlattrHub.setup() renders buttons added to the page later.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var src = new URL(script ? script.src : "/js/button.js", window.location.href);
  var hub = src.origin;
  var KEYS = ["uid", "url", "title", "description", "category", "language", "tags", "hidden"];
  var defaults = {};
  KEYS.forEach(function (key) {
    if (src.searchParams.get(key)) { defaults[key] = src.searchParams.get(key); }
  });

  function options(link) {
    var found = {};
    var rel = link.getAttribute("rel") || "";
    if (rel.indexOf("flattr;") === 0) {
      rel.slice(7).split(";").forEach(function (pair) {
        var at = pair.indexOf(":");
        if (at > 0) { found[pair.slice(0, at).trim()] = pair.slice(at + 1).trim(); }
      });
    }
    KEYS.forEach(function (key) {
      var value = link.getAttribute("data-flattr-" + key);
      if (value !== null && value !== "") { found[key] = value; }
      if (!found[key] && defaults[key]) { found[key] = defaults[key]; }
    });
    found.url = found.url || link.href || window.location.href;
    found.title = found.title || link.getAttribute("title") || document.title;
    found.description = found.description || (link.textContent || "").trim();
    found.language = found.language || link.getAttribute("lang") || "";
    return found;
  }

  function submitUrl(opts) {
    var query = new URLSearchParams();
    query.set("user_id", opts.uid || "");
    ["url", "title", "description", "language", "tags", "category", "hidden"]
      .forEach(function (key) { if (opts[key]) { query.set(key, opts[key]); } });
    return hub + "/submit/auto?" + query.toString();
  }

  // through the CSSOM, which a Content-Security-Policy without 'unsafe-inline' allows
  function style(node, css) { node.style.cssText = css; return node; }

  function render(link) {
    if (link.getAttribute("data-flattr-rendered")) { return; }
    link.setAttribute("data-flattr-rendered", "1");
    var opts = options(link);
    var box = style(document.createElement("span"),
      "display:inline-flex;align-items:stretch;font:bold 13px/1 sans-serif;" +
      "border:1px solid #2d6e2d;border-radius:3px;overflow:hidden;vertical-align:middle");
    box.className = "flattr-hub-button";
    var button = style(document.createElement("a"),
      "background:#2d6e2d;color:#fff;padding:5px 9px;text-decoration:none;cursor:pointer");
    button.className = "flattr-hub-flattr";
    button.href = submitUrl(opts);
    button.target = "_blank";
    button.rel = "noopener";
    button.textContent = "Flattr";
    button.title = "Flattr " + (opts.title || opts.url);
    var count = style(document.createElement("span"),
      "background:#fff;color:#2d6e2d;padding:5px 8px;min-width:1.2em;text-align:center");
    count.className = "flattr-hub-count";
    count.textContent = "…";
    box.appendChild(button);
    box.appendChild(count);
    link.parentNode.replaceChild(box, link);
    fetch(hub + "/button/count?url=" + encodeURIComponent(opts.url),
          {credentials: "omit", mode: "cors"})
      .then(function (reply) { return reply.ok ? reply.json() : null; })
      .then(function (data) {
        count.textContent = data ? String(data.flattrs) : "–";
        if (data) { count.title = data.flattrs_month + " this month"; }
      })
      .catch(function () { count.textContent = "–"; });
  }

  function setup() {
    Array.prototype.forEach.call(document.querySelectorAll("a.FlattrButton"), render);
  }

  window.FlattrHub = {setup: setup, render: render};
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
