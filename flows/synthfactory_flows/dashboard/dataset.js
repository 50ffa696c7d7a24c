// The dataset page (/dataset?uri=<version>): metrics over versions, gates, judge-score
// histograms and validator pass rates, rejected rows with reasons, a browser of whole rows
// (thumbnails for images), plots, tokens and cost per column and model, lineage. Values
// reach the DOM as text only (common.js).
"use strict";

(() => {
  const { el, text, num, fmt, usd, statusClass, link, image, api, table, chart, Unauthorized, signInNote } = window.SF;
  const uri = new URLSearchParams(location.search).get("uri") || "";
  const box = (id) => document.getElementById(id);
  const PAGE = 10;
  const TREND_FIRST = 8; // charts shown at first (gated metrics lead); a button shows the rest
  let offset = 0;
  let total = 0;

  function summary(o, d) {
    const m = d.manifest || {};
    const links = el("p", { class: "links" });
    const runLink = link(o.run_page, "← the run", true);
    if (runLink) runLink.setAttribute("data-role", "run-link");
    if (runLink) links.append(runLink, " ");
    const card = link(d.card, "dataset card (README.md)", true);
    if (card) links.append(card);
    const parts = [
      el("h2", {}, text(o.name), " ", el("span", { class: "muted", text: o.version }), " ",
        el("span", { class: statusClass(o.status), text: o.status })),
      el("p", { class: "muted uri", text: o.uri }),
      el("p", { text: `${fmt(m.rows)} rows · ${fmt(m.rejected_rows)} rejected · ${text(m.modality)} · created ${text(m.created_at)}` }),
      links,
    ];
    if (m.spec && m.spec.description) parts.push(el("p", { class: "description", text: m.spec.description }));
    box("summary").replaceChildren(...parts);
    box("title").textContent = text(o.name);
  }

  function trend(t) {
    const versions = Array.isArray(t && t.versions) ? t.versions : [];
    const metrics = Object.entries((t && t.metrics) || {});
    const holder = box("trend");
    if (!metrics.length) {
      holder.replaceChildren(el("p", { class: "muted", text: "no metrics in any version" }));
      return;
    }
    const labels = versions.map((v) => text(v.version));
    holder.replaceChildren();
    holder.setAttribute("data-versions", String(versions.length));
    const draw = (list) => {
      for (const [name, values] of list) {
        const c = el("div", { class: "chart", "data-metric": name });
        holder.append(c);
        chart(c, name, [name], { x: "index", labels, height: 120 })([versions.map((_, i) => i), values.map(num)]);
      }
    };
    draw(metrics.slice(0, TREND_FIRST));
    if (metrics.length > TREND_FIRST) {
      const more = el("button", { type: "button", id: "trend-more", text: `show all ${metrics.length} metrics` });
      more.addEventListener("click", () => {
        more.remove();
        draw(metrics.slice(TREND_FIRST));
      });
      box("trend-section").append(more);
    }
  }

  function gates(list) {
    const rows = (Array.isArray(list) ? list : []).map((g) => ({
      metric: g.metric, condition: g.condition, value: g.value,
      result: el("span", { class: g.passed ? "published" : "failed", text: g.passed ? "passed" : text(g.reason || "failed") }),
    }));
    box("gates").replaceChildren(rows.length
      ? table([["metric", "metric"], ["condition", "condition"], ["value", "value"], ["result", "result"]], rows, "gates")
      : el("p", { class: "muted", text: "no gates" }));
  }

  function judges(list, validators) {
    const holder = box("judges");
    holder.replaceChildren();
    const items = Array.isArray(list) ? list : [];
    if (!items.length) holder.append(el("p", { class: "muted", text: "no judge columns" }));
    for (const j of items) {
      const c = el("div", { class: "chart histogram", "data-column": j.column });
      holder.append(c);
      const title = `${text(j.column)} (mean kept ${fmt(j.mean_kept, 2)})`;
      const scores = Array.isArray(j.scores) ? j.scores : [];
      chart(c, title, ["kept", "rejected"], { x: "number", bars: true, height: 150 })([scores.map(Number), (j.kept || []).map(num), (j.rejected || []).map(num)]);
    }
    const rates = (Array.isArray(validators) ? validators : []).map((v) => ({
      name: v.name, checked: fmt(v.checked, 0), passed: fmt(v.passed, 0), rate: num(v.rate) == null ? "" : `${fmt(100 * v.rate)} %`,
    }));
    box("validators").replaceChildren(...(rates.length
      ? [el("h3", { text: "Validator pass rates" }), table([["name", "validator"], ["checked", "checked"], ["passed", "passed"], ["rate", "pass rate"]], rates, "validators")]
      : []));
  }

  function rejected(r) {
    r = r || {};
    const rows = Array.isArray(r.rows) ? r.rows : [];
    const reasons = (Array.isArray(r.by_reason) ? r.by_reason : []).map((x) => ({ reason: x.reason, rows: fmt(x.rows, 0) }));
    if (!rows.length) {
      box("rejected").replaceChildren(el("p", { class: "muted", text: `no rejected rows (${fmt(r.total, 0)} counted)` }));
      return;
    }
    const cols = [...new Set(rows.flatMap((x) => Object.keys(x)))].slice(0, 12);
    box("rejected").replaceChildren(
      el("p", { class: "muted", text: `${fmt(r.total, 0)} rejected in all; the first ${fmt(rows.length, 0)} of ${fmt(r.scanned, 0)} read:` }),
      table([["reason", "reason kind"], ["rows", "rows"]], reasons, "reasons"),
      table(cols.map((c) => [c, c]), rows, "rejected-rows"),
    );
  }

  async function samples() {
    let result;
    try {
      result = await api("/api/dataset/rows?" + new URLSearchParams({ uri, offset: String(offset), limit: String(PAGE) }));
    } catch (e) {
      return;
    }
    const d = result.body;
    if (!result.ok) {
      box("samples").replaceChildren(el("p", { class: "err", text: d.error || `HTTP ${result.status}` }));
      return;
    }
    const rows = Array.isArray(d.rows) ? d.rows : [];
    total = Number(d.total) || 0;
    const all = [...new Set(rows.flatMap((x) => Object.keys(x)))];
    const cols = box("lineage-columns").checked ? all : all.filter((c) => !c.includes("__"));
    box("page-note").textContent = rows.length ? `rows ${fmt(offset + 1, 0)}–${fmt(offset + rows.length, 0)} of ${fmt(total, 0)}` : "no rows";
    box("prev").disabled = offset <= 0;
    box("next").disabled = offset + PAGE >= total;
    box("samples").replaceChildren(table(cols.map((c) => [c, c]), rows, "sample rows"));
  }

  box("lineage-columns").addEventListener("change", () => samples());
  box("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); samples(); });
  box("next").addEventListener("click", () => { if (offset + PAGE < total) { offset += PAGE; samples(); } });

  function cost(c) {
    c = c || {};
    const shape = (x) => ({ ...x, prompt_tokens: fmt(x.prompt_tokens, 0), completion_tokens: fmt(x.completion_tokens, 0), cost_usd: usd(x.cost_usd) });
    const columns = (Array.isArray(c.columns) ? c.columns : []).map(shape);
    const models = (Array.isArray(c.models) ? c.models : []).map(shape);
    const t = c.totals || {};
    const parts = [el("p", { text: `paid for the whole run (every request): ${usd(t.cost_usd) || "no prices set"} · ${fmt(t.prompt_tokens, 0)} prompt + ${fmt(t.completion_tokens, 0)} completion tokens` })];
    if (columns.length) {
      parts.push(
        el("h3", { text: "Per column (rows kept and rejected)" }),
        table([["column", "column"], ["model", "model"], ["prompt_tokens", "prompt tokens"], ["completion_tokens", "completion tokens"], ["cost_usd", "cost"]], columns, "cost-columns"),
        el("h3", { text: "Per model" }),
        table([["model", "model"], ["prompt_tokens", "prompt tokens"], ["completion_tokens", "completion tokens"], ["cost_usd", "cost"]], models, "cost-models"),
      );
    }
    box("cost").replaceChildren(...parts);
  }

  function lineage(l) {
    const rows = Object.entries(l || {}).map(([k, v]) => ({ key: k, value: el("pre", { text: JSON.stringify(v, null, 2) }) }));
    box("lineage").replaceChildren(table([["key", ""], ["value", ""]], rows, "lineage"));
  }

  function plots(d) {
    const list = (Array.isArray(d.plots) ? d.plots : []).map((u) => image(u, "plot")).filter(Boolean);
    box("plots").replaceChildren(...(list.length ? list : [el("p", { class: "muted", text: "no plots" })]));
  }

  async function load() {
    let o, d;
    try {
      const q = new URLSearchParams({ uri });
      [o, d] = await Promise.all([api("/api/dataset/overview?" + q), api("/api/dataset?" + q)]);
    } catch (e) {
      if (e instanceof Unauthorized) signInNote(box("summary"));
      else box("summary").replaceChildren(el("p", { class: "err", text: `dashboard API unreachable: ${text(e.message)}` }));
      return;
    }
    if (!o.ok) {
      box("summary").replaceChildren(el("h2", { text: uri }), el("p", { class: "err", text: o.body.error || `HTTP ${o.status}` }));
      return;
    }
    const ov = o.body;
    const detail = d.ok ? d.body : {};
    summary(ov, detail);
    trend(ov.trend);
    gates(ov.gates);
    judges(ov.judges, ov.validators);
    rejected(ov.rejected);
    cost(ov.cost);
    lineage(ov.lineage);
    plots(detail);
    await samples();
    document.body.setAttribute("data-loaded", "1");
  }

  if (!uri) {
    box("summary").replaceChildren(el("p", { class: "err", text: "no dataset given: open /dataset?uri=<dataset version>" }));
    return;
  }
  load();
})();
