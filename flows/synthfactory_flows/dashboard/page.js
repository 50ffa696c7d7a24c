// The dashboard page. Every value from the API reaches the DOM as text (textContent,
// text nodes, setAttribute on data-* / title), links only when they are http(s), images
// only from this origin; no HTML is built from strings and no inline handlers exist. The
// access token never sits in the URL: sign-in exchanges it for an HttpOnly cookie.
"use strict";

(() => {
  const LIVE = new Set(["running", "starting", "evaluating", "stalled"]);
  const FINISHED_RUNS = new Set(["completed", "failed", "cancelled", "cancelling", "crashed"]);
  let session = { signed_in: false, read_needs_token: false, actions: false, can_sign_in: false };

  // helpers shared with the run and dataset pages (common.js); api() throws Unauthorized on 401
  const { Unauthorized, el, text, fmt, statusClass, ownUrl, link, image, api, leaseNote } = window.SF;
  const eta = (s) =>
    s == null || !Number.isFinite(Number(s)) ? "" : s < 90 ? `${Math.round(s)}s` : `${Math.round(s / 60)}m`;

  /** A link to one of this dashboard's pages (``/run``, ``/dataset``) for a version. */
  function pageLink(path, uri, label) {
    const a = el("a", { text: label, class: "page-link" });
    a.href = `${path}?${new URLSearchParams({ uri: text(uri) })}`;
    return a;
  }
  let runsByFlowRun = new Map(); // flow run id -> version URI (from the catalog)

  function setErrors(messages) {
    document.getElementById("errors").replaceChildren(
      ...messages.map((m) => el("p", { class: "err", text: m })),
    );
  }

  // --- sign-in ---------------------------------------------------------------------------

  function renderSession(note) {
    const form = document.getElementById("signin");
    form.hidden = !(session.can_sign_in && !session.signed_in);
    const hint = document.getElementById("signin-note");
    hint.className = note ? "err" : "muted";
    hint.textContent =
      note || (session.read_needs_token ? "sign in to see the datasets" : "sign in for actions");
    document.getElementById("signed-in").hidden = !session.signed_in;
  }

  async function loadSession(note) {
    try {
      session = (await api("/api/session")).body;
    } catch (e) {
      /* keep the last known state */
    }
    renderSession(note);
  }

  document.getElementById("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("signin-token");
    const token = input.value;
    input.value = "";
    let note = "";
    try {
      const result = await api("/api/login", { method: "POST", body: JSON.stringify({ token }) });
      if (!result.ok) note = text(result.body.error) || `sign-in failed (HTTP ${result.status})`;
    } catch (e) {
      note = e instanceof Unauthorized ? "that is not the access token" : text(e.message);
    }
    await loadSession(note);
    refresh();
  });

  document.getElementById("signout").addEventListener("click", async () => {
    try {
      await api("/api/logout", { method: "POST", body: "{}" });
    } catch (e) {
      /* signed out anyway */
    }
    await loadSession();
    refresh();
  });

  // --- tables ----------------------------------------------------------------------------

  function renderRunning(list) {
    const rows = list.map((d) => {
      const p = d.progress || {};
      const pct = p.target_rows ? Math.min(100, (100 * Number(p.rows_done || 0)) / Number(p.target_rows)) : 0;
      const fill = el("div");
      fill.style.width = `${Number.isFinite(pct) ? pct.toFixed(1) : 0}%`;
      const units = Object.entries(p.units || {})
        .filter(([k]) => k.endsWith("_per_second"))
        .map(([k, v]) => `${fmt(v)} ${k.replace("_per_second", "")}/s`)
        .join(", ");
      const speed = el("td", {}, `${fmt(p.rows_per_second)} rows/s` + (units ? ` (${units})` : ""));
      if (p.requests_in_flight != null) {
        speed.append(
          el("br"),
          el("span", {
            class: "muted live",
            text: `${fmt(p.requests_in_flight)} requests in flight · ${fmt(p.tokens_per_second)} tokens/s now`,
          }),
        );
      }
      if (p.cost_usd != null) {
        let spent = `$${Number(p.cost_usd).toFixed(2)} spent`;
        if (p.projected_cost_usd != null) spent += ` · ~$${Number(p.projected_cost_usd).toFixed(2)} projected`;
        if (p.budget_usd != null) spent += ` · budget $${Number(p.budget_usd).toFixed(2)}`;
        speed.append(el("br"), el("span", { class: "muted cost", text: spent }));
      }
      return el(
        "tr",
        { "data-uri": d.uri },
        el("td", { title: d.uri }, pageLink("/run", d.uri, text(d.name || d.uri))),
        el("td", { class: statusClass(d.status), text: d.status }),
        el("td", {}, el("div", { class: "bar" }, fill)),
        el("td", { class: "rows", text: `${fmt(p.rows_done)} / ${fmt(p.target_rows)}` }),
        speed,
        el("td", { text: eta(p.eta_seconds) }),
        el("td", { text: `${fmt(p.failures)} / ${fmt(p.retries)}` }),
        el("td", { text: `${fmt(p.actors_busy)} / ${fmt(p.actors)}` }),
        el("td", {}, link(d.prefect_url, "run")),
      );
    });
    document.querySelector("#running tbody").replaceChildren(
      ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 9, class: "muted", text: "nothing running" }))]),
    );
  }

  function whenText(epochSeconds) {
    const n = Number(epochSeconds);
    return Number.isFinite(n) ? new Date(n * 1000).toLocaleString() : "";
  }

  function renderCatalog(list) {
    const rows = list.map((d) => {
      const name = el("td");
      const label = text(d.name || d.uri);
      if (d.openable) {
        const a = el("a", { text: label, "data-uri": d.uri });
        a.href = "#";
        name.append(a);
      } else {
        name.append(label);
      }
      if (d.openable) name.append(" ", pageLink("/dataset", d.uri, "page"), " ", pageLink("/run", d.uri, "run"));
      else if (d.status === "crashed" || d.status === "stale") name.append(" ", pageLink("/run", d.uri, "run"));
      if (d.name) name.append(el("span", { class: "note uri", text: d.uri }));
      if (d.error) name.append(el("span", { class: "note err", text: d.error }));
      if (d.status === "crashed" && d.lease) {
        const l = d.lease;
        name.append(el("span", {
          class: "note",
          text: leaseNote(l),
        }));
      } else if (d.status === "stale" && d.progress) {
        name.append(el("span", { class: "note", text: `no progress since ${whenText(d.progress.updated_at)}` }));
      }
      const rowsCell = el("td", {}, fmt(d.rows));
      if (d.target_met === false) {
        rowsCell.append(" ", el("span", { class: "quarantined", text: `of ${fmt(d.target_rows)}` }));
      }
      const gates = el("td");
      (Array.isArray(d.gates) ? d.gates : []).forEach((g, i) => {
        if (i) gates.append(el("br"));
        gates.append(el("span", {
          class: g && g.passed ? "published" : "failed",
          text: `${text(g && g.metric)} ${text(g && g.condition)}`,
        }));
      });
      return el(
        "tr",
        { "data-uri": d.uri },
        name,
        el("td", { text: d.version }),
        el("td", { class: statusClass(d.status), text: d.status }),
        el("td", { text: d.modality }),
        rowsCell,
        el("td", { text: fmt(d.shards) }),
        gates,
        el("td", { text: d.created_at }),
        el("td", {}, link(d.prefect_url, "run")),
      );
    });
    document.querySelector("#catalog tbody").replaceChildren(
      ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 9, class: "muted", text: "no datasets yet" }))]),
    );
  }

  document.querySelector("#catalog tbody").addEventListener("click", (event) => {
    const a = event.target instanceof Element ? event.target.closest("a[data-uri]") : null;
    if (!a) return;
    event.preventDefault();
    show(a.getAttribute("data-uri"));
  });

  async function refreshRuns() {
    let runs;
    try {
      runs = (await api("/api/runs")).body;
    } catch (e) {
      return; // runs are optional
    }
    const canAct = session.actions && session.signed_in;
    const rows = (Array.isArray(runs.runs) ? runs.runs : []).map((r) => {
      const state = text(r.state);
      const action = el("td");
      if (canAct && r.id && !FINISHED_RUNS.has(state.toLowerCase())) {
        action.append(el("button", { class: "action", type: "button", "data-run-id": r.id, text: "cancel" }));
      }
      // the version it writes: from the server (``dataset``), else from the catalog
      const version = r.dataset && r.dataset.uri ? text(r.dataset.uri) : runsByFlowRun.get(r.id);
      const label = r.dataset && r.dataset.name ? `${text(r.dataset.name)} ${text(r.dataset.version)}` : "version";
      const stateCell = el("td", { class: statusClass(state), text: state });
      if (r.prefect_state) stateCell.title = `Prefect still says ${text(r.prefect_state)}`;
      return el(
        "tr",
        { "data-run-id": r.id },
        el("td", {}, link(r.url, text(r.name)) || text(r.name),
          version ? " " : "", version ? pageLink("/run", version, label) : ""),
        stateCell,
        el("td", { text: r.start_time || r.expected_start_time }),
        action,
      );
    });
    const empty = runs.error ? text(runs.error) : "no Prefect server configured, or no runs yet";
    document.querySelector("#runs tbody").replaceChildren(
      ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 4, class: "muted", text: empty }))]),
    );
  }

  document.querySelector("#runs tbody").addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-run-id]") : null;
    if (!button) return;
    button.disabled = true;
    const id = encodeURIComponent(button.getAttribute("data-run-id"));
    try {
      const result = await api(`/api/runs/${id}/cancel`, { method: "POST", body: "{}" });
      if (!result.ok) setErrors([`cancel failed: ${text(result.body.error)}`]);
    } catch (e) {
      setErrors([`cancel failed: ${text(e.message)}`]);
    }
    refreshRuns();
  });

  async function refresh() {
    try {
      const data = (await api("/api/datasets")).body;
      document.getElementById("roots").textContent = (data.roots || []).map(text).join(", ");
      const all = Array.isArray(data.datasets) ? data.datasets : [];
      runsByFlowRun = new Map(all.filter((d) => d.flow_run_id).map((d) => [text(d.flow_run_id), d.uri]));
      renderRunning(all.filter((d) => LIVE.has(d.status)));
      renderCatalog(all.filter((d) => !LIVE.has(d.status) && d.status !== "error"));
      setErrors(
        all.filter((d) => d.status === "error").map((d) => `storage error for ${text(d.root)}: ${text(d.error)}`),
      );
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      if (e instanceof Unauthorized) {
        session.signed_in = false;
        renderSession();
        setErrors(["sign in with the access token to see the datasets"]);
        return;
      }
      setErrors([`dashboard API unreachable: ${text(e.message)}`]);
    }
    await refreshRuns();
  }

  // --- one dataset -----------------------------------------------------------------------

  function pre(value) {
    return el("pre", { text: JSON.stringify(value, null, 2) });
  }

  function cell(value) {
    const td = el("td");
    if (value && typeof value === "object" && typeof value.thumbnail === "string") {
      const img = image(value.thumbnail);
      if (img) td.append(img);
    } else {
      td.textContent = value !== null && typeof value === "object" ? JSON.stringify(value) : text(value);
    }
    return td;
  }

  async function show(uri) {
    const box = document.getElementById("detail");
    box.hidden = false;
    let result;
    try {
      result = await api("/api/dataset?uri=" + encodeURIComponent(uri));
    } catch (e) {
      box.replaceChildren(el("h2", { text: uri }), el("p", { class: "err", text: e.message }));
      return;
    }
    const d = result.body;
    if (!result.ok || d.error) {
      box.replaceChildren(
        el("h2", { text: uri }),
        el("p", { class: "err", text: d.error || `HTTP ${result.status}` }),
      );
      return;
    }
    const m = d.manifest || {};
    const lineage = m.lineage || {};
    const sample = Array.isArray(d.sample) ? d.sample : [];
    const cols = sample.length ? Object.keys(sample[0]) : [];
    const parts = [
      el("h2", {}, text(m.name), " ", el("span", { class: "muted", text: m.version })),
      el("p", { class: "muted uri", text: d.uri }),
      el("p", {
        text: `${text(m.status)} · ${fmt(m.rows)} rows · ${text(m.modality)} · generator ${JSON.stringify(m.generator)} · code ${text(lineage.code_version)}`,
      }),
    ];
    if (m.spec && m.spec.description) parts.push(el("p", { class: "description", text: m.spec.description }));
    parts.push(el("h2", { text: "Sample rows" }));
    if (d.sample_error) parts.push(el("p", { class: "err", text: d.sample_error }));
    parts.push(
      el(
        "table",
        { class: "sample" },
        el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { text: c })))),
        el("tbody", {}, ...sample.map((r) => el("tr", {}, ...cols.map((c) => cell(r[c]))))),
      ),
    );
    const plots = (Array.isArray(d.plots) ? d.plots : []).map((u) => image(u, "plot")).filter(Boolean);
    if (plots.length) parts.push(el("h2", { text: "Plots" }), el("div", { class: "plots" }, ...plots));
    const card = link(ownUrl(d.card), "dataset card (README.md)");
    if (card) parts.push(el("p", {}, card));
    if (d.metrics) parts.push(el("h2", { text: "Metrics" }), pre(d.metrics));
    parts.push(el("h2", { text: "Spec" }), pre(m.spec));
    parts.push(
      el("h2", { text: "Lineage" }),
      pre({ seeds: m.seeds, lineage: m.lineage, fingerprints: m.fingerprints, flow_run: m.flow_run }),
    );
    box.replaceChildren(...parts);
  }

  // --- start -----------------------------------------------------------------------------

  const params = new URLSearchParams(location.search);
  const note = params.has("signin") ? "that sign-in link was used already: paste the access token" : "";
  if (location.search) history.replaceState(null, "", location.pathname); // no query in history
  loadSession(note).then(refresh);
  setInterval(refresh, 2000);
})();
