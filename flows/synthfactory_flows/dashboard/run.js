// The run page (/run?uri=<version>): live charts from the run's sampled history (polled
// from /api/run while the run goes), the shard timeline, and links to the dataset version
// and the Prefect run. Values reach the DOM as text only (common.js).
"use strict";

(() => {
  const { el, text, num, fmt, usd, statusClass, link, api, table, chart, leaseNote, Unauthorized, signInNote } = window.SF;
  const LIVE = new Set(["running", "starting", "evaluating", "stalled", "stopping"]);
  const uri = new URLSearchParams(location.search).get("uri") || "";
  const box = (id) => document.getElementById(id);
  const charts = {
    rows: chart(box("chart-rows"), "rows/s", ["rows/s (run)", "rows/s (now)"]),
    tokens: chart(box("chart-tokens"), "tokens/s", ["completion tokens/s"]),
    inflight: chart(box("chart-inflight"), "requests in flight", ["requests in flight", "actors busy"]),
    errors: chart(box("chart-errors"), "retries, 429s, errors", ["HTTP 429", "HTTP retries", "requests failed", "shard retries", "shard failures"]),
    cost: chart(box("chart-cost"), "cost (USD)", ["spent", "projected", "budget"]),
    eta: chart(box("chart-eta"), "ETA (s)", ["ETA"]),
    shards: chart(box("chart-shards"), "shards", ["queued", "running", "committed", "retried"]),
  };
  let timer = null;

  /** The rows/s between consecutive samples (null where time did not move). */
  function rateNow(history) {
    return history.map((s, i) => {
      if (!i) return null;
      const dt = Number(s.t) - Number(history[i - 1].t);
      const dr = Number(s.rows_generated) - Number(history[i - 1].rows_generated);
      return dt > 0 && Number.isFinite(dr) ? Math.max(0, dr / dt) : null;
    });
  }

  function draw(d) {
    const h = Array.isArray(d.history) ? d.history.filter((s) => s && num(s.t) != null) : [];
    const xs = h.map((s) => Number(s.t));
    const col = (key) => h.map((s) => num(s[key]));
    const budget = num(d.progress && d.progress.budget_usd);
    charts.rows([xs, col("rows_per_second"), rateNow(h)]);
    charts.tokens([xs, col("tokens_per_second")]);
    charts.inflight([xs, col("requests_in_flight"), col("actors_busy")]);
    charts.errors([xs, col("http_429"), col("http_retries"), col("requests_failed"), col("retries"), col("failures")]);
    charts.cost([xs, col("cost_usd"), col("projected_cost_usd"), h.map(() => budget)]);
    charts.eta([xs, col("eta_seconds")]);
    const queued = h.map((s) => {
      const q = Number(s.shards_total) - Number(s.shards_done) - Number(s.actors_busy || 0);
      return Number.isFinite(q) ? Math.max(0, q) : null;
    });
    charts.shards([xs, queued, col("actors_busy"), col("shards_done"), col("retries")]);
  }

  function summary(d) {
    const p = d.progress || {};
    const m = d.manifest || {};
    const links = el("p", { class: "links" });
    const datasetLink = d.dataset_page ? link(d.dataset_page, "dataset version →", true) : null;
    if (datasetLink) datasetLink.setAttribute("data-role", "dataset-link");
    for (const a of [datasetLink, link(d.prefect_url, "Prefect run")]) {
      if (a) links.append(a, " ");
    }
    const rows = num(m.rows) != null ? m.rows : p.rows_done;
    const target = num(m.target_rows) != null ? m.target_rows : p.target_rows;
    const facts = [
      `${fmt(rows)} / ${fmt(target)} rows`,
      p.phase ? `phase: ${text(p.phase)}` : "",
      num(p.rows_per_second) != null ? `${fmt(p.rows_per_second)} rows/s` : "",
      num(p.eta_seconds) != null && LIVE.has(text(d.status)) ? `ETA ${fmt(p.eta_seconds, 0)} s` : "",
      num(p.cost_usd) != null ? `${usd(p.cost_usd)} spent` : "",
      num(p.projected_cost_usd) != null ? `~${usd(p.projected_cost_usd)} projected` : "",
      num(p.budget_usd) != null ? `budget ${usd(p.budget_usd)}` : "",
      `${fmt(p.shards_done)} / ${fmt(p.shards_total)} shards`,
    ].filter(Boolean);
    const parts = [
      el("h2", {}, text(d.name), " ", el("span", { class: "muted", text: d.version }), " ",
        el("span", { class: statusClass(d.status), id: "run-status", text: d.status })),
      el("p", { class: "muted uri", text: d.uri }),
      el("p", { text: facts.join(" · ") }),
      links,
    ];
    if (d.error) parts.push(el("p", { class: "err", text: d.error }));
    if (p.message) parts.push(el("p", { class: "muted", text: p.message }));
    if (d.status === "crashed" && d.lease) {
      const l = d.lease;
      parts.push(el("p", { class: "err", text: `the run died: ${leaseNote(l)}` }));
    }
    box("summary").replaceChildren(...parts);
    box("title").textContent = text(d.name);
  }

  /** One bar per committed shard, placed on the run's time axis, in worker lanes. */
  function timeline(shards) {
    const list = Array.isArray(shards) ? shards.filter((s) => num(s.start) != null && num(s.end) != null) : [];
    if (!list.length) {
      box("timeline").replaceChildren(el("p", { class: "muted", text: "no shard committed yet" }));
      return;
    }
    const t0 = Math.min(...list.map((s) => Number(s.start)));
    const t1 = Math.max(...list.map((s) => Number(s.end)));
    const span = Math.max(t1 - t0, 1e-3);
    const rows = list.slice(-200).map((s) => {
      const bar = el("div", { class: "gantt-bar", title: `part ${text(s.index)}: ${fmt(s.seconds)} s, ${fmt(s.rows)} rows kept, ${fmt(s.rejected_rows)} rejected` });
      bar.style.left = `${(100 * (Number(s.start) - t0)) / span}%`;
      bar.style.width = `${Math.max(0.5, (100 * (Number(s.end) - Number(s.start))) / span)}%`;
      return el("div", { class: "gantt-row", "data-shard": s.index },
        el("span", { class: "gantt-label", text: `part ${text(s.index)} · ${text(s.worker)}` }),
        el("div", { class: "gantt-lane" }, bar));
    });
    box("timeline").replaceChildren(
      el("p", { class: "muted", text: `${list.length} shards committed over ${fmt(span)} s (bars: generation time of each shard)` }),
      ...rows,
    );
  }

  /** Seconds covered by the union of [start, end] intervals (an actor's shards may overlap). */
  function covered(intervals) {
    let total = 0;
    let reach = -Infinity;
    for (const [a, b] of intervals.slice().sort((x, y) => x[0] - y[0])) {
      if (b > reach) total += b - Math.max(a, reach);
      reach = Math.max(reach, b);
    }
    return total;
  }

  /** Per actor (worker): shards committed, seconds spent generating them and utilisation,
   *  that time over the span from the run's first shard start to its last shard end. */
  function actors(shards) {
    const list = Array.isArray(shards) ? shards.filter((s) => num(s.start) != null && num(s.end) != null) : [];
    if (!list.length) {
      box("actors").replaceChildren();
      return;
    }
    const t0 = Math.min(...list.map((s) => Number(s.start)));
    const span = Math.max(Math.max(...list.map((s) => Number(s.end))) - t0, 1e-3);
    const by = new Map();
    for (const s of list) {
      const worker = text(s.worker) || "?";
      if (!by.has(worker)) by.set(worker, []);
      by.get(worker).push([Number(s.start), Number(s.end)]);
    }
    const rows = [...by.keys()].sort().map((worker) => {
      const busy = covered(by.get(worker));
      return { worker, shards: fmt(by.get(worker).length), busy: `${fmt(busy)} s`, use: `${fmt((100 * busy) / span, 0)} %` };
    });
    const columns = [["worker", "actor"], ["shards", "shards committed"], ["busy", "generating"], ["use", "utilisation"]];
    box("actors").replaceChildren(
      el("h3", { text: `actors (utilisation over ${fmt(span)} s of shards)` }),
      table(columns, rows, "actors"),
    );
  }

  async function refresh() {
    let result;
    try {
      result = await api("/api/run?" + new URLSearchParams({ uri }));
    } catch (e) {
      if (e instanceof Unauthorized) signInNote(box("summary"));
      else box("summary").replaceChildren(el("p", { class: "err", text: `dashboard API unreachable: ${text(e.message)}` }));
      return;
    }
    const d = result.body;
    if (!result.ok) {
      box("summary").replaceChildren(el("h2", { text: uri }), el("p", { class: "err", text: d.error || `HTTP ${result.status}` }));
      return;
    }
    summary(d);
    draw(d);
    timeline(d.shards);
    actors(d.shards);
    document.body.setAttribute("data-refreshes", String(Number(document.body.getAttribute("data-refreshes") || 0) + 1));
    box("updated").textContent = "updated " + new Date().toLocaleTimeString();
    if (!LIVE.has(text(d.status)) && timer) {
      clearInterval(timer); // finished: the charts stay as they ended
      timer = null;
    }
  }

  if (!uri) {
    box("summary").replaceChildren(el("p", { class: "err", text: "no run given: open /run?uri=<dataset version>" }));
    return;
  }
  document.title = "synthfactory · run";
  refresh();
  timer = setInterval(refresh, 2000);
})();
