// The wattroute dashboard: polls /v1/dashboard every few seconds with the token kept in this
// tab's sessionStorage (sent as Authorization: Bearer, never in a URL) and draws the fleet.
// Everything a tenant named (job names, service names, reasons) is set as text, never as HTML.
"use strict";

(function () {
  const KEY = "wattroute.token";
  const EVERY_MS = 2000;
  const SOURCES = [
    ["grid_import_kw", "grid", "c-grid", "#7f8c9d"],
    ["solar_kw", "solar", "c-solar", "#f2b705"],
    ["wind_kw", "wind", "c-wind", "#3fa7d6"],
    ["battery_discharge_kw", "battery", "c-battery", "#7b4fb8"],
    ["genset_kw", "genset", "c-genset", "#c2571a"],
  ];
  const SINKS = [
    ["battery_charge_kw", "battery charging", "c-charge"],
    ["export_kw", "export", "c-export"],
    ["curtailed_kw", "curtailed", "c-curtailed"],
  ];
  const SITE_COLOURS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
  let timer = null;
  let drawn = {};

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const fmt = (x, digits = 1) =>
    x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  const when = (iso) => (iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?\+00:00$/, "").replace(/\+00:00$/, "") : "–");
  const short = (id) => id.slice(0, 8);

  function bar(fraction, cls) {
    const inner = el("div", { class: cls });
    inner.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
    return el("div", { class: "bar" }, inner);
  }

  function needsToken() {
    const meta = document.querySelector("meta[name='wattroute-auth']");
    return !meta || meta.content !== "open";
  }

  function token() {
    return sessionStorage.getItem(KEY);
  }

  function showLogin(message) {
    $("board").hidden = true;
    $("login").hidden = false;
    $("logout").hidden = true;
    $("login-error").textContent = message || "";
    setStatus("signed out", "");
  }

  function setStatus(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = `status ${cls}`;
  }

  async function poll() {
    clearTimeout(timer);
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    else if (needsToken()) {
      showLogin("");
      return;
    }
    try {
      const answer = await fetch("/v1/dashboard", { headers, cache: "no-store", credentials: "omit" });
      if (answer.status === 401 || answer.status === 403) {
        const problem = await answer.json().catch(() => ({}));
        sessionStorage.removeItem(KEY);
        showLogin(t ? problem.detail || "this token is not accepted" : "");
        return;
      }
      if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
      render(await answer.json());
    } catch (err) {
      setStatus(`no data: ${err.message}`, "error");
    }
    timer = setTimeout(poll, EVERY_MS);
  }

  function render(d) {
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = !token();
    $("fleet").textContent = d.fleet;
    $("who").textContent = d.scope === "all" ? "all tenants" : `tenant ${d.tenant}`;
    $("as-of").textContent = d.time ? `as of ${when(d.time)} (step of ${fmt(d.step_minutes)} min)` : "waiting for the first step";
    if (d.degraded) setStatus(`degraded: ${d.reasons.join("; ")}`, "degraded");
    else setStatus(d.time ? `live · ${when(d.time)}` : "waiting", "ok");
    renderSites(d);
    renderObjective(d);
    renderHistory(d);
    renderJobs(d);
    renderInference(d);
    renderEvents(d);
  }

  function renderSites(d) {
    const cards = d.sites.map((s) => {
      const now = s.now || {};
      const load = now.load_kw || 0;
      const scale = Math.max(load, ...SOURCES.map(([k]) => now[k] || 0), ...SINKS.map(([k]) => now[k] || 0), 1);
      const rows = [];
      for (const [k, label, cls] of [...SOURCES, ...SINKS]) {
        if (!now[k] && !["grid_import_kw", "solar_kw", "wind_kw"].includes(k)) continue;
        rows.push(el("span", {}, label), bar((now[k] || 0) / scale, cls), el("span", { class: "num" }, fmt(now[k])));
      }
      rows.push(el("span", {}, el("b", {}, "load")), bar(load / scale, "c-load"), el("span", { class: "num" }, fmt(load)));
      const limit = s.grid_event_kw !== null ? Math.min(s.grid_event_kw, s.import_limit_kw ?? Infinity) : s.import_limit_kw;
      const imp = now.grid_import_kw || 0;
      const meta = [
        el("div", {}, "import ", el("b", {}, `${fmt(imp)} kW`), " of limit ", el("b", {}, limit === null ? "none" : `${fmt(limit)} kW`),
          s.grid_event_kw !== null ? ` (grid event: ≤ ${fmt(s.grid_event_kw)} kW)` : ""),
      ];
      if (limit) meta.push(bar(imp / limit, "c-import"));
      if (s.battery_kwh > 0) {
        meta.push(el("div", {}, "battery ", el("b", {}, `${fmt(now.soc_kwh)} of ${fmt(s.battery_kwh)} kWh`),
          ` (${fmt((100 * (now.soc_kwh || 0)) / s.battery_kwh, 0)} %)`));
        meta.push(bar((now.soc_kwh || 0) / s.battery_kwh, "c-soc"));
      }
      const signals = el("table", { class: "signals" },
        el("tbody", {}, ...Object.entries(s.signals).map(([name, v]) =>
          el("tr", { title: `source: ${v.source}` }, el("td", {}, name.replace(/_/g, " ")), el("td", { class: "num" }, fmt(v.latest, 2)),
            el("td", {}, v.kind), el("td", { class: "num" }, v.age_s === null ? "–" : `${fmt(v.age_s / 60, 0)} min old`)))));
      const tag = s.offline ? el("span", { class: "tag bad" }, "offline")
        : d.degraded ? el("span", { class: "tag bad" }, "degraded") : s.zone ? el("span", { class: "tag" }, s.zone) : null;
      return el("div", { class: "card", "data-site": s.name },
        el("h3", {}, el("span", {}, s.name), tag),
        el("div", { class: "bars" }, ...rows),
        el("div", { class: "meta" }, ...meta),
        signals);
    });
    $("sites").replaceChildren(...cards);
  }

  function renderObjective(d) {
    const o = d.objective;
    const items = [
      el("div", {}, "objective so far", el("b", {}, `$${fmt(o.usd, 2)}`)),
      el("div", {}, "cost", el("b", {}, `$${fmt(o.cost_usd, 2)}`)),
      el("div", {}, "emissions", el("b", {}, `${fmt(o.emissions_kg, 1)} kg`)),
    ];
    if (o.baseline_usd !== null) {
      const saved = o.baseline_usd - o.usd;
      items.push(el("div", {}, "carbon-agnostic baseline", el("b", {}, `$${fmt(o.baseline_usd, 2)}`)));
      items.push(el("div", {}, saved >= 0 ? "saved" : "over the baseline",
        el("b", { class: saved >= 0 ? "better" : "worse" }, `$${fmt(Math.abs(saved), 2)} (${fmt(o.baseline_usd ? (100 * saved) / o.baseline_usd : 0, 1)} %)`)));
      items.push(el("div", {}, "baseline emissions", el("b", {}, `${fmt(o.baseline_emissions_kg, 1)} kg`)));
    } else {
      items.push(el("div", {}, "baseline", el("b", {}, "not tracked")));
    }
    $("objective").replaceChildren(...items);
    const h = d.history;
    plot("objective-chart", [
      { x: h.time, y: h.objective_usd, name: "this fleet", mode: "lines", line: { color: "#1b7f3b" } },
      { x: h.time, y: h.baseline_usd, name: "carbon-agnostic", mode: "lines", line: { color: "#7f8c9d", dash: "dot" } },
    ], { yaxis: { title: { text: "USD so far" } } });
  }

  function renderHistory(d) {
    const box = $("history");
    const h = d.history;
    for (const s of d.sites) {
      const id = `history-${s.index}`;
      if (!$(id)) box.append(el("div", { id, class: "chart", "data-chart": s.name }));
      const series = h.sites[s.name];
      const traces = SOURCES.map(([k, label, , colour]) => ({
        x: h.time, y: series[k], name: label, stackgroup: "supply", mode: "none", fillcolor: colour, line: { color: colour },
      }));
      traces.push({ x: h.time, y: series.load_kw, name: "load", mode: "lines", line: { color: "#17202c", width: 2 } });
      traces.push({ x: h.time, y: series.curtailed_kw, name: "curtailed", mode: "lines", line: { color: "#d4b800", width: 1, dash: "dot" } });
      if (s.battery_kwh > 0) {
        traces.push({ x: h.time, y: series.soc_kwh, name: "battery kWh", yaxis: "y2", mode: "lines", line: { color: "#7b4fb8", width: 1, dash: "dash" } });
      }
      const shapes = s.import_limit_kw === null ? [] : [{
        type: "line", xref: "paper", x0: 0, x1: 1, y0: s.import_limit_kw, y1: s.import_limit_kw,
        line: { color: "#b3261e", width: 1, dash: "dash" },
      }];
      plot(id, traces, {
        title: { text: `${s.name}${s.import_limit_kw === null ? "" : ` · import limit ${fmt(s.import_limit_kw)} kW`}`, font: { size: 13 } },
        yaxis: { title: { text: "kW" } },
        yaxis2: { title: { text: "kWh" }, overlaying: "y", side: "right", showgrid: false },
        shapes,
      });
    }
  }

  function renderJobs(d) {
    const items = d.jobs.items;
    $("jobs-count").textContent = items.length < d.jobs.total ? `newest ${items.length} of ${d.jobs.total}` : `${d.jobs.total}`;
    const rows = items.map((j) => el("tr", { "data-job": j.id },
      el("td", { title: j.id }, j.name, el("div", { class: "why" }, short(j.id))),
      el("td", {}, j.tenant),
      el("td", { class: `state-${j.state}` }, j.state),
      el("td", {}, j.site ? `${j.site} (${j.accelerators})` : "–"),
      el("td", { class: "progress" }, bar(j.progress, "c-grid"), `${fmt(100 * j.progress, 0)} %`),
      el("td", {}, when(j.deadline)),
      el("td", {}, j.moved.length ? el("div", {}, ...j.moved.map((m) => el("div", { class: "why" }, `${when(m.time)} ${m.from} → ${m.to}: ${m.why}`)))
        : j.moves ? `${j.moves} (earlier)` : "none")));
    $("jobs").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "no jobs"))]));
    const sites = d.sites.map((s) => s.name);
    const traces = sites.map((site, i) => {
      const x = [], y = [], base = [], text = [];
      for (const j of items) {
        for (const seg of j.segments.filter((g) => g.site === site)) {
          const start = Date.parse(seg.start);
          x.push(Date.parse(seg.end) - start);
          base.push(seg.start);
          y.push(`${j.name} ${short(j.id)}`);
          text.push(site);
        }
      }
      return { type: "bar", orientation: "h", x, y, base, name: site, text, textposition: "inside", marker: { color: SITE_COLOURS[i % SITE_COLOURS.length] } };
    });
    $("jobs-chart").hidden = !traces.some((t) => t.x.length);
    if ($("jobs-chart").hidden) return;
    plot("jobs-chart", traces, { barmode: "overlay", xaxis: { type: "date" }, yaxis: { automargin: true }, title: { text: "where each job ran", font: { size: 13 } } });
  }

  function renderInference(d) {
    const r = d.inference.requests;
    $("requests").replaceChildren(
      el("div", {}, "requests (fleet)", el("b", {}, fmt(r.requests, 0))),
      el("div", {}, "within SLO", el("b", {}, r.requests ? `${fmt((100 * r.served_within_slo) / r.requests, 1)} %` : "–")),
      el("div", {}, "late", el("b", {}, fmt(r.served_late, 0))),
      el("div", {}, "dropped", el("b", {}, fmt(r.dropped, 0))));
    const rows = [];
    for (const s of d.inference.services) {
      for (const [point, p] of Object.entries(s.points)) {
        const shares = Object.entries(p.shares).map(([site, share]) => `${site} ${fmt(100 * share, 0)} %`).join(", ") || "not routed";
        const ok = p.latency_ms !== null && p.latency_ms <= s.latency_slo_ms;
        rows.push(el("tr", { "data-service": s.service },
          el("td", {}, s.service), el("td", {}, point), el("td", { class: "num" }, `${fmt(p.demand_rps, 1)} req/s`),
          el("td", {}, shares),
          el("td", { class: p.latency_ms === null ? "" : ok ? "yes" : "no" }, `${fmt(p.latency_ms, 0)} / ${fmt(s.latency_slo_ms, 0)} ms`)));
      }
    }
    $("inference").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "no inference services"))]));
  }

  function renderEvents(d) {
    const rows = d.grid_events.map((e) => el("tr", { "data-event": e.id },
      el("td", {}, e.site),
      el("td", { class: "num" }, `≤ ${fmt(e.max_kw)} kW`),
      el("td", {}, when(e.start)), el("td", {}, when(e.end)),
      el("td", {}, e.status),
      el("td", { class: "num" }, `${fmt(e.peak_kw)} kW`),
      el("td", { class: e.complied === null ? "" : e.complied ? "yes" : "no" }, e.complied === null ? "–" : e.complied ? "yes" : "no"),
      el("td", { class: "num" }, e.compliance_s === null ? "–" : `${fmt(e.compliance_s, 2)} s`)));
    $("events").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, class: "empty" }, "no grid events"))]));
  }

  function plot(id, traces, layout) {
    if (!window.Plotly) return;
    const full = {
      margin: { l: 55, r: 50, t: 30, b: 35 }, showlegend: true, legend: { orientation: "h", y: -0.2 },
      paper_bgcolor: "#fff", plot_bgcolor: "#fff", font: { size: 11 }, ...layout,
    };
    window.Plotly.react(id, traces, full, { displaylogo: false, responsive: true });
    drawn[id] = true;
  }

  function start() {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const t = $("token").value.trim();
      if (!t) return;
      sessionStorage.setItem(KEY, t);
      $("token").value = "";
      poll();
    });
    $("logout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      drawn = {};
      $("history").replaceChildren();
      showLogin("");
      clearTimeout(timer);
    });
    poll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
