"""The widget's script and stylesheet, served as ``/widget.js`` and ``/widget.css``.

Kept as Python strings so that they ship inside the package with any
install (no package-data configuration to forget).

Embedding, on any site::

    <div data-recommender-article="jt-070" data-recommender-site="japantoday"></div>
    <script src="https://recs.example.com/widget.js" async></script>

The script fills each such element with ``GET /widget?article={article_id}``
(optional ``data-recommender-k`` and ``data-recommender-placement`` too; a
section page names ``data-recommender-section="{its category label}"``
instead of an article, a home page only its site), and
binds every block on the page, fetched or included server-side: when half of
a block is visible (or half of the window, for a taller block) it reports one
``impression`` per item, and a click on an item reports a ``click``, both to
the ``data-rec-events`` URL the fragment names (resolved against the script's
own address when relative). Reports are sent as ``text/plain`` JSON with
``navigator.sendBeacon`` (a simple cross-origin request, no CORS preflight,
and delivered even when the click navigates away). ``session`` is a random
id per page view; no cookie or storage is used.

The page's markup names the article, so the id is untrusted: it travels as a
query parameter (in a path, ``..`` and ``%2e%2e`` survive encoding and the
browser resolves them, so an id could make the script fetch another
endpoint), and the script inserts an answer only when it is the service's
fragment: a ``200`` with ``Content-Type: text/html``, the
:data:`FRAGMENT_HEADER` marker, and one ``section.rec-block`` as its content
(parsed in an inert ``<template>`` first).
"""

from __future__ import annotations

#: Where the service writes the JSON list of the placements under an A/B test.
EXPERIMENT_PLACEMENTS = "/*experiment-placements*/[]"

#: Response header marking the block's fragment (value ``1``); exposed to
#: scripts by CORS, checked by ``widget.js`` before it inserts an answer.
FRAGMENT_HEADER = "X-Recommender-Fragment"

WIDGET_JS = """\
/* recommender widget: "A mix of what's trending on our other sites". */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.fetch || !window.URL) return;
  var base = new URL(".", script.src).href;
  var pageView = randomId();
  /* Placements under an A/B test (filled in by the service): their requests carry the
     page view's bucket, 0-999, from which the service assigns the variant. */
  var experiments = /*experiment-placements*/[];
  var bucket = parseInt(pageView.slice(0, 6), 16) % 1000;

  function randomId() {
    var bytes = new Uint8Array(8);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function send(endpoint, events) {
    var body = JSON.stringify({ events: events });
    if (navigator.sendBeacon &&
        navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) return;
    fetch(endpoint, {
      method: "POST", body: body, keepalive: true, mode: "cors", credentials: "omit",
      headers: { "Content-Type": "text/plain" }
    }).catch(function () {});
  }

  function describe(block, link, kind) {
    var event = {
      kind: kind,
      article_id: link.getAttribute("data-rec-article"),
      placement: block.getAttribute("data-rec-placement") || "widget",
      session: pageView
    };
    var source = block.getAttribute("data-rec-source");
    if (source) event.source_article_id = source;
    /* What a ranker learns from: the run, the variant, the slot (1 = first), the propensity. */
    var run = block.getAttribute("data-rec-run");
    if (run) event.run_id = run;
    var variant = block.getAttribute("data-rec-variant");
    if (variant) event.variant = variant;
    var position = Number(link.getAttribute("data-rec-position"));
    if (position >= 1 && Math.floor(position) === position) event.position = position;
    var chance = link.getAttribute("data-rec-propensity");
    var propensity = chance ? Number(chance) : NaN;
    if (propensity > 0 && propensity <= 1) event.propensity = propensity;
    return event;
  }

  function eventsEndpoint(block) {
    /* Absolute (the service's public URL), or relative to this script. */
    var named = block.getAttribute("data-rec-events");
    if (!named) return "";
    try {
      var url = new URL(named, base);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : "";
    } catch (e) {
      return "";
    }
  }

  function images(block) {
    /* A broken image: its site's default image once, else an empty box of the same size. */
    Array.prototype.forEach.call(block.querySelectorAll("img.rec-image"), function (img) {
      if (img.getAttribute("data-rec-watched")) return;
      img.setAttribute("data-rec-watched", "1");
      function failed() {
        var fallback = img.getAttribute("data-rec-fallback");
        img.removeAttribute("data-rec-fallback");
        if (fallback && /^https?:\\/\\//i.test(fallback) && fallback !== img.src) {
          img.src = fallback;
        } else {
          img.setAttribute("data-rec-hidden", "1");
        }
      }
      img.addEventListener("error", failed);
      if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) failed();
    });
  }

  function bind(block) {
    images(block);
    var endpoint = eventsEndpoint(block);
    if (!endpoint || block.getAttribute("data-rec-bound")) return;
    block.setAttribute("data-rec-bound", "1");
    var links = block.querySelectorAll("a[data-rec-article]");
    if (!links.length) return;
    block.addEventListener("click", function (e) {
      var link = e.target.closest ? e.target.closest("a[data-rec-article]") : null;
      if (link && block.contains(link)) send(endpoint, [describe(block, link, "click")]);
    });
    function impressions() {
      send(endpoint, Array.prototype.map.call(links, function (link) {
        return describe(block, link, "impression");
      }));
    }
    if (!("IntersectionObserver" in window)) { impressions(); return; }
    /* Seen: half of the block, or half of the window for a block taller than that. */
    var observer = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) {
        return e.isIntersecting && (e.intersectionRatio >= 0.5 ||
          e.intersectionRect.height >= 0.5 * window.innerHeight);
      })) {
        observer.disconnect();
        impressions();
      }
    }, { threshold: [0, 0.25, 0.5, 0.75, 1] });
    observer.observe(block);
  }

  function isFragment(response) {
    /* Only the service's own fragment: never JSON, an error page or a redirect's target. */
    var type = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
    return response.status === 200 && type === "text/html" &&
      response.headers.get("X-Recommender-Fragment") === "1";
  }

  function fill(slot) {
    /* An article page names its article, a section page its section; a home page its site. */
    var id = slot.getAttribute("data-recommender-article");
    var section = slot.getAttribute("data-recommender-section");
    if (slot.getAttribute("data-rec-filled")) return;
    if (!id && !section && !slot.getAttribute("data-recommender-site")) return;
    slot.setAttribute("data-rec-filled", "1");
    /* The id is a query parameter: no value of it (../, %2e%2e/, ?, #) changes the path. */
    var params = new URLSearchParams();
    if (id) params.set("article", id);
    else if (section) params.set("section", section);
    ["site", "k", "placement"].forEach(function (name) {
      var value = slot.getAttribute("data-recommender-" + name);
      if (value) params.set(name, value);
    });
    if (experiments.indexOf(params.get("placement") || "widget") >= 0) {
      params.set("ab", String(bucket));
    }
    var url = new URL("widget", base);
    url.search = params.toString();
    fetch(url.href, { mode: "cors", credentials: "omit" })
      .then(function (response) { return isFragment(response) ? response.text() : ""; })
      .then(function (html) {
        if (!html) return;
        /* Parsed inert first; the service escapes every value in the fragment. */
        var template = document.createElement("template");
        template.innerHTML = html;
        var content = template.content;
        var block = content.firstElementChild;
        if (content.children.length !== 1 || !block.matches("section.rec-block")) return;
        slot.textContent = "";
        slot.appendChild(document.importNode(block, true));
        bind(slot.querySelector(".rec-block"));
      })
      .catch(function () {});
  }

  function stylesheet() {
    if (document.querySelector("link[data-rec-style]")) return;
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = base + "widget.css";
    link.setAttribute("data-rec-style", "1");
    document.head.appendChild(link);
  }

  function start() {
    stylesheet();
    Array.prototype.forEach.call(document.querySelectorAll(
      "[data-recommender-article], [data-recommender-section], [data-recommender-site]"), fill);
    Array.prototype.forEach.call(document.querySelectorAll(".rec-block"), images);
    Array.prototype.forEach.call(document.querySelectorAll(".rec-block[data-rec-events]"), bind);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
"""

WIDGET_CSS = """\
/* recommender widget. Restyle through the custom properties (set them on
   .rec-block or any ancestor); layouts: the seed page's text list (default),
   .rec-layout-grid (thumbnails in --rec-columns columns), .rec-layout-sidebar. */
.rec-block { --rec-font: inherit; --rec-color: inherit; --rec-muted: inherit;
  --rec-gap: 1em; --rec-radius: 4px; --rec-image-bg: #eee; --rec-label-bg: #eee;
  --rec-label-color: #333;
  font: var(--rec-font); color: var(--rec-color); margin: 2em 0; }
.rec-heading { font-size: 1.1em; font-weight: bold; margin: 0 0 .75em; }
.rec-items { list-style: none; margin: 0; padding: 0;
  display: grid; grid-template-columns: repeat(auto-fill, minmax(min(14em, 100%), 1fr));
  gap: var(--rec-gap); }
.rec-item { display: flex; flex-direction: column; gap: .25em; min-width: 0; }
.rec-category { font-size: .8em; text-transform: uppercase; letter-spacing: .04em; opacity: .7; }
/* In a grid or sidebar an item without a label keeps the label's line, so titles align. */
.rec-category:empty::before { content: "\\00a0"; }
.rec-title { font-weight: bold; text-decoration: none; color: inherit; overflow-wrap: anywhere; }
.rec-title:hover { text-decoration: underline; }
.rec-site { font-size: .85em; opacity: .7; color: var(--rec-muted); }
.rec-label { align-self: flex-start; font-size: .7em; padding: .1em .4em;
  border-radius: var(--rec-radius); background: var(--rec-label-bg);
  color: var(--rec-label-color); }
/* The thumbnail's box keeps its 16:9 size whether the image loads, fails or is absent. */
.rec-thumb { display: block; aspect-ratio: 16 / 9; width: 100%; overflow: hidden;
  border-radius: var(--rec-radius); background: var(--rec-image-bg); }
.rec-image { display: block; width: 100%; height: 100%; object-fit: cover; }
.rec-image[data-rec-hidden] { visibility: hidden; }
.rec-layout-grid .rec-items {
  grid-template-columns: repeat(var(--rec-columns, 3), minmax(0, 1fr)); }
@media (max-width: 40em) {
  .rec-layout-grid .rec-items {
    grid-template-columns: repeat(var(--rec-columns-narrow, 2), minmax(0, 1fr)); } }
@media (max-width: 22em) {
  .rec-layout-grid .rec-items { grid-template-columns: minmax(0, 1fr); } }
.rec-layout-sidebar .rec-items { grid-template-columns: minmax(0, 1fr); }
.rec-layout-sidebar .rec-item { display: grid; grid-template-columns: 6em minmax(0, 1fr);
  column-gap: .75em; align-items: start; }
.rec-layout-sidebar .rec-item > :not(.rec-thumb) { grid-column: 2; }
.rec-layout-sidebar .rec-thumb { grid-row: 1 / span 4; }
"""
