// Shared by the dashboard's pages (catalog, run, dataset): DOM building (every value from the API
// reaches the DOM as text: textContent, text nodes, setAttribute on data-* / title; links
// only when they are http(s), images only from this origin), the API call, and charts drawn
// with the vendored uPlot (vendor/README.md). No HTML is built from strings.
"use strict";

window.SF = (() => {
  class Unauthorized extends Error {}

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = String(value);
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("data-") || ["title", "colspan", "type", "id"].includes(key)) {
        node.setAttribute(key, String(value));
      } else throw new Error("unexpected attribute " + key);
    }
    for (const child of children) {
      if (child == null || child === "") continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const text = (v) => (v == null ? "" : String(v));
  const num = (v) => (v == null || v === "" || !Number.isFinite(Number(v)) ? null : Number(v));
  const fmt = (n, digits) =>
    num(n) == null ? "" : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits ?? 1 });
  const usd = (n) => (num(n) == null ? "" : `$${Number(n).toFixed(Number(n) < 1 ? 4 : 2)}`);
  const STATUS = new Set([
    "published", "completed", "quarantined", "stalled", "stale", "failed", "error", "broken",
    "crashed", "running", "starting", "evaluating", "incomplete", "cancelled", "cancelling",
    "stopped", "pending", "scheduled", "late",
  ]);
  const statusClass = (s) => "status " + (STATUS.has(text(s).toLowerCase()) ? text(s).toLowerCase() : "other");

  function safeHref(url) {
    if (typeof url !== "string" || !url) return null;
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function ownUrl(url) {
    const href = safeHref(url);
    return href && new URL(href).origin === location.origin ? href : null;
  }

  /** A link; ``own``: to a page of this dashboard (same tab), else a new tab. */
  function link(url, label, own) {
    const href = own ? ownUrl(url) : safeHref(url);
    if (!href) return null;
    const a = el("a", { text: label });
    a.href = href;
    if (!own) {
      a.target = "_blank";
      a.rel = "noopener noreferrer";
    }
    return a;
  }

  const pageUrl = (path, uri) => `${path}?${new URLSearchParams({ uri: text(uri) })}`;

  function image(url, cls) {
    const src = ownUrl(url);
    if (!src) return null;
    const img = el("img", { class: cls });
    img.alt = "";
    img.src = src;
    return img;
  }

  async function api(path, options) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      ...options,
    });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.status === 401) throw new Unauthorized((body && body.error) || "sign in");
    return { ok: response.ok, status: response.status, body: body || {} };
  }

  /** A table of ``rows`` (objects) over ``columns`` ([key, heading] pairs). */
  function table(columns, rows, cls) {
    return el(
      "table",
      { class: cls },
      el("thead", {}, el("tr", {}, ...columns.map(([, h]) => el("th", { text: h })))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...columns.map(([k]) => cellOf(r[k]))))),
    );
  }

  function cellOf(value) {
    const td = el("td");
    if (value instanceof Node) td.append(value);
    else if (value && typeof value === "object" && typeof value.thumbnail === "string") {
      const img = image(value.thumbnail, "thumb");
      if (img) td.append(img);
    } else if (value !== null && typeof value === "object") td.textContent = JSON.stringify(value);
    else td.textContent = text(value);
    return td;
  }

  // --- charts (uPlot) -----------------------------------------------------------------------

  const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#6b7480"];

  /** A chart in ``box``: ``series`` are labels; ``opts.x``: "time" (epoch seconds, the
   *  default), "index" (labels from ``opts.labels``) or "number"; ``opts.bars``. Returns
   *  ``update(data)`` where data is [xs, ys1, ys2, ...]; the box carries ``data-points``
   *  (non-empty values of the first series) and ``data-updates`` (redraws). */
  function chart(box, title, series, opts) {
    opts = opts || {};
    const holder = el("div", { class: "plot-area" });
    box.replaceChildren(el("h3", { text: title }), holder);
    box.setAttribute("data-updates", "0");
    box.setAttribute("data-points", "0");
    let plot = null;
    const xTime = (opts.x || "time") === "time";
    const labels = opts.labels || [];
    const bars = opts.bars && window.uPlot ? window.uPlot.paths.bars({ size: [0.35, 60], align: 0 }) : null;
    const make = (data) => {
      const width = Math.max(260, holder.clientWidth || box.clientWidth || 360);
      return new window.uPlot(
        {
          width,
          height: opts.height || 170,
          legend: { show: true, live: false },
          cursor: { show: true, drag: { x: false, y: false } },
          scales: {
            x: opts.x === "index"
              ? { time: false, range: () => [-0.5, Math.max(0.5, labels.length - 0.5)] }
              : bars ? { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } : { time: xTime },
            y: { range: (u, min, max) => [Math.min(0, min), max > min ? max * 1.1 : min + 1] },
          },
          axes: [
            opts.x === "index"
              ? { splits: () => labels.map((_, i) => i), values: (u, splits) => splits.map((i) => text(labels[i])) }
              : bars ? { splits: (u) => (u.data[0] || []).slice() } : {},
            { size: 60 },
          ],
          series: [
            {},
            ...series.map((label, i) => ({
              label,
              stroke: COLORS[i % COLORS.length],
              fill: bars ? COLORS[i % COLORS.length] + "99" : undefined,
              width: bars ? 0 : 2,
              paths: bars || undefined,
              points: { show: opts.x === "index" || bars ? !bars : false, size: 7 },
              spanGaps: true,
            })),
          ],
        },
        data,
        holder,
      );
    };
    return (data) => {
      if (!window.uPlot) {
        holder.replaceChildren(el("p", { class: "err", text: "the chart library did not load" }));
        return;
      }
      if (plot) plot.setData(data);
      else plot = make(data);
      const first = data[1] || [];
      box.setAttribute("data-points", String(first.filter((v) => v != null).length));
      box.setAttribute("data-updates", String(Number(box.getAttribute("data-updates")) + 1));
    };
  }

  /** Why a crashed run is crashed, from its lease: it expired, or (still running on the
   *  clock) the process holding it died on that machine. */
  function leaseNote(l) {
    const who = `${text(l.owner)} on ${text(l.host)} (pid ${text(l.pid)})`;
    const at = Number(l.expires_at);
    const when = Number.isFinite(at) ? new Date(at * 1000).toLocaleString() : "";
    return Number.isFinite(at) && at * 1000 > Date.now()
      ? `the process holding the lease, ${who}, is gone (the lease would run until ${when})`
      : `lease of ${who} expired ${when}`;
  }

  function signInNote(box) {
    const home = link("/", "the dashboard's main page", true);
    box.replaceChildren(el("p", { class: "err" }, "Sign in with the access token on ", home, " first."));
  }

  return { Unauthorized, el, text, num, fmt, usd, statusClass, safeHref, ownUrl, link, pageUrl, image, api, table, cellOf, chart, leaseNote, signInNote };
})();
