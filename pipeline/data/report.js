"use strict";
const R = JSON.parse(document.getElementById("report-data").textContent);
const main = document.getElementById("report");
const NS = "http://www.w3.org/2000/svg";
const fmt = v => (v === null || v === undefined) ? "–" : (typeof v === "number" ? v.toLocaleString("en-US") : String(v));
const pct = (a, b) => b ? (100 * a / b).toFixed(1) + "%" : "–";
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "text") e.textContent = v; else e.setAttribute(k, v); }
  for (const k of kids) if (k !== null && k !== undefined) e.appendChild(typeof k === "string" ? document.createTextNode(k) : k);
  return e;
}
function s(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function section(id, title, note) {
  const sec = h("section", {id: id}, h("h2", {text: title}));
  if (note) sec.appendChild(h("p", {class: "sub", text: note}));
  main.appendChild(sec);
  return sec;
}
// A link when the page is served by `thresher serve` (R.links), else the text itself.
function linked(kind, key, label) {
  const base = R.links && R.links[kind];
  return base ? h("a", {href: base + encodeURIComponent(key), class: kind + "-link"}, label) : label;
}
function empty(sec, what) { sec.appendChild(h("p", {class: "empty", text: "(" + what + ")"})); }
function legend(items) {
  return h("div", {class: "legend"}, ...items.map(([cls, name]) => h("span", {}, h("i", {class: "seg " + cls}), name)));
}
// A bar made of segments [[class, value, title]], as a share of `total`.
function track(segs, total) {
  const t = h("div", {class: "track"});
  for (const [cls, v, title] of segs) {
    if (!v) continue;
    t.appendChild(h("div", {class: "seg " + cls, style: "width:" + (100 * v / Math.max(total, 1)) + "%", title: title || fmt(v)}));
  }
  return t;
}
function table(cols, rows) {
  const t = h("table", {}, h("tr", {}, ...cols.map(c => h("th", {class: c.num ? "num" : "", text: c.title, style: c.width ? "width:" + c.width : ""}))));
  for (const r of rows) t.appendChild(h("tr", {}, ...cols.map(c => {
    const v = c.get(r);
    const td = h("td", {class: (c.num ? "num" : "") + (c.label ? " label" : "")});
    if (v instanceof Node) td.appendChild(v); else td.textContent = c.num ? fmt(v) : (v ?? "");
    return td;
  })));
  return t;
}
// Bars with full labels, one row each, sharing one scale.
function bars(sec, rows, cls, unit) {
  if (!rows.length) return empty(sec, "none in this run");
  const max = Math.max(...rows.map(r => r[1]), 1);
  sec.appendChild(table([
    {title: "", get: r => r[0], label: true, width: "32%"},
    {title: unit, get: r => r[1], num: true, width: "10%"},
    {title: "", get: r => track([[r[2] || cls, r[1]]], max)},
  ], rows));
}
// A vertical histogram over bin edges with axes: series [[class, counts, name]] drawn side by side.
function histogram(sec, edges, series, unit) {
  if (!edges || edges.length < 2) return empty(sec, "no " + unit + " in this run");
  const W = 1000, H = 260, L = 60, B = 48, T = 10, R_ = 40, n = edges.length - 1;
  const max = Math.max(1, ...series.flatMap(x => x[1]));
  const svg = s("svg", {viewBox: `0 0 ${W} ${H + B + T}`, role: "img"});
  const bw = (W - L - R_) / n, sw = bw / series.length;
  s("line", {class: "axis", x1: L, y1: T, x2: L, y2: T + H}, svg);
  s("line", {class: "axis", x1: L, y1: T + H, x2: W - R_, y2: T + H}, svg);
  for (let k = 0; k <= 4; k++) {  // y ticks
    const v = Math.round(max * k / 4), y = T + H - H * k / 4;
    s("line", {class: "axis", x1: L - 4, y1: y, x2: L, y2: y}, svg);
    s("text", {x: L - 6, y: y + 4, "text-anchor": "end"}, svg).textContent = fmt(v);
  }
  s("text", {x: 12, y: T + H / 2, transform: `rotate(-90 12 ${T + H / 2})`, "text-anchor": "middle"}, svg).textContent = "documents";
  series.forEach(([cls, counts, name], j) => counts.forEach((c, i) => {
    const bh = H * c / max;
    const r = s("rect", {class: "bar", x: L + i * bw + j * sw + 1, y: T + H - bh, width: Math.max(1, sw - 2), height: bh,
                         style: "fill: var(--" + cls + ")"}, svg);
    s("title", {}, r).textContent = `${name}: ${fmt(c)} documents of ${fmt(edges[i])}–${fmt(edges[i + 1])} ${unit}`;
  }));
  const every = Math.max(1, Math.ceil(n / 10));
  for (let i = 0; i <= n; i += every) {
    s("line", {class: "axis", x1: L + i * bw, y1: T + H, x2: L + i * bw, y2: T + H + 4}, svg);
    s("text", {x: L + i * bw, y: T + H + 16, "text-anchor": "middle"}, svg).textContent = fmt(edges[i]);
  }
  s("text", {x: (W + L) / 2, y: T + H + 38, "text-anchor": "middle"}, svg).textContent = unit + " (log-spaced bins)";
  if (series.length > 1) sec.appendChild(legend(series.map(x => [x[0], x[2]])));
  sec.appendChild(svg);
}

function runReport() {
  const t = R.totals || {}, run = R.run || {};
  const docs = (t.read || 0) - (R.not_pages || 0);
  const sum = section("summary", "Summary");
  sum.appendChild(table([{title: "", get: r => r[0], width: "32%"}, {title: "", get: r => r[1]}], [
    ["records read", fmt(t.read) + (R.not_pages ? ` (${fmt(R.not_pages)} WARC records are not pages: request, metadata, warcinfo)` : "")],
    ["documents entering curation", fmt(docs)],
    ["kept", fmt(t.kept) + "  (" + pct(t.kept, docs) + " of documents)"],
    ["dropped", fmt((t.dropped || 0) - (R.not_pages || 0))], ["errored", fmt(t.errored)],
    ["wall time", run.wall_seconds !== undefined ? run.wall_seconds.toFixed(1) + " s on " + run.runner + ", " + run.workers + " worker(s), started " + run.started : "–"],
    ["inputs", (run.inputs || []).length + " file(s) under " + (run.input_root || "–")],
  ]));

  const f = section("funnel", "Funnel", "Each stage's documents in, split into kept, dropped and errored; every bar is the stage's own input (per-stage scale), the numbers are absolute. WARC records that are not pages are left out of ingest's bar.");
  f.appendChild(legend([["kept", "kept"], ["dropped", "dropped"], ["errored", "errored"]]));
  const stages = (R.funnel || []).map(x => {
    const d = Object.values(x.dropped || {}).reduce((a, b) => a + b, 0) - (x.stage === "ingest" ? (R.not_pages || 0) : 0);
    const e = Object.values(x.errored || {}).reduce((a, b) => a + b, 0);
    return {stage: x.stage, in: x.in - (x.stage === "ingest" ? (R.not_pages || 0) : 0), kept: x.kept, dropped: d, errored: e};
  });
  f.appendChild(table([
    {title: "stage", get: r => r.stage, width: "14%"}, {title: "in", get: r => r.in, num: true},
    {title: "kept", get: r => r.kept, num: true}, {title: "dropped", get: r => r.dropped, num: true},
    {title: "errored", get: r => r.errored, num: true}, {title: "kept share", get: r => pct(r.kept, r.in), num: true},
    {title: "", width: "45%", get: r => track([["kept", r.kept, "kept " + fmt(r.kept)], ["dropped", r.dropped, "dropped " + fmt(r.dropped)], ["errored", r.errored, "errored " + fmt(r.errored)]], r.in)},
  ], stages));

  const langs = R.languages || [];
  const l = section("languages", "Languages", "Documents kept and dropped per language (a drop's language is the one langid gave it; drops before langid are listed apart), with each language's most frequent drop reasons.");
  if (!langs.length) empty(l, "no documents"); else {
    l.appendChild(legend([["kept", "kept"], ["dropped", "dropped"]]));
    l.appendChild(table([
      // "(before langid)" holds drops only: no kept document to list
      {title: "language", get: r => r.kept ? linked("lang", r.lang, r.lang) : r.lang, width: "12%"}, {title: "kept", get: r => r.kept, num: true},
      {title: "dropped", get: r => r.dropped, num: true}, {title: "kept share", get: r => pct(r.kept, r.kept + r.dropped), num: true},
      {title: "", width: "30%", get: r => track([["kept", r.kept], ["dropped", r.dropped]], r.kept + r.dropped)},
      {title: "top drop reasons", label: true, get: r => Object.entries(r.top_reasons).map(([k, v]) => k + " " + fmt(v)).join(", ")},
    ], langs));
  }

  const rs = section("reasons", "Drops and errors by reason");
  const errored = new Set((R.funnel || []).flatMap(x => Object.keys(x.errored || {}).map(k => x.stage + "." + k)));
  bars(rs, Object.entries(R.by_reason || {}).filter(([k]) => k !== "ingest.not_response")
    .map(([k, v]) => [linked("reason", k, k + (errored.has(k) ? " (error)" : "")), v, errored.has(k) ? "errored" : "dropped"]), "dropped", "documents");

  const ex = section("examples", "Examples of each drop reason", "Three documents per reason (the same ones on every call: picked by a hash of their id); the threshold that fired is highlighted. The three most frequent reasons are open; click a reason to open it.");
  const examples = Object.entries(R.examples || {});
  if (!examples.length) empty(ex, "no drops");
  examples.forEach(([reason, rows], n) => {
    const det = h("details", n < 3 ? {open: ""} : {}, h("summary", {}, h("strong", {text: reason}), "  (" + fmt((R.by_reason || {})[reason]) + " documents)"));
    ex.appendChild(det);
    for (const r of rows) {
      const box = h("div", {class: "example"});
      box.appendChild(h("div", {}, h("code", {text: r.id}), "  ", h("span", {class: "label", text: r.url || ""})));
      if (r.detail) box.appendChild(h("div", {}, "fired: ", h("mark", {class: "fired", text: r.detail})));
      box.appendChild(h("pre", {text: (r.text || "(no text: " + (r.errored ? "an unreadable record" : "dropped before extraction") + ")") + (r.truncated ? " …" : "")}));
      const sig = Object.entries(r.signals || {});
      if (sig.length) {
        const p = h("div", {class: "signals"}, "signals: ");
        sig.forEach(([k, v], i) => {
          const txt = k + " " + (typeof v === "number" ? +v.toFixed(4) : JSON.stringify(v));
          p.appendChild(k === r.fired ? h("mark", {class: "fired-signal", text: txt}) : document.createTextNode(txt));
          if (i < sig.length - 1) p.appendChild(document.createTextNode(", "));
        });
        box.appendChild(p);
      }
      det.appendChild(box);
    }
  });

  const dd = section("dedup", "Deduplication");
  if (!R.dedup) empty(dd, "no near-dedup stage in this run"); else {
    const d = R.dedup;
    dd.appendChild(h("p", {text: Object.entries(d.removed || {}).map(([k, v]) => fmt(v) + " removed by " + k).join(", ") +
      "; " + fmt(d.clusters || 0) + " near-duplicate clusters; components " + (d.converged === false ? "NOT converged" : "converged in " + fmt(d.rounds_used) + " rounds") + "."}));
    const sizes = Object.entries(d.cluster_sizes || {}).map(([k, v]) => [+k, v]).sort((a, b) => a[0] - b[0]);
    dd.appendChild(h("h3", {text: "Cluster sizes"}));
    bars(dd, sizes.map(([k, v]) => [k + " documents", v]), "bar", "clusters");
    dd.appendChild(h("h3", {text: "Largest clusters (the representative kept)"}));
    const big = R.largest_clusters || [];
    if (!big.length) empty(dd, "no clusters"); else
      dd.appendChild(table([{title: "size", get: r => r.size, num: true, width: "8%"}, {title: "representative", get: r => r.cluster_id, width: "25%"},
                            {title: "url", label: true, get: r => r.url || ""}], big));
  }

  const tm = section("time", "Time per stage", "Seconds of worker time inside each stage (all workers together), from stats.json.");
  bars(tm, (R.funnel || []).filter(x => x.seconds !== undefined).map(x => [x.stage, Math.round(x.seconds * 100) / 100]), "bar", "seconds");

  const ln = section("lengths", "Document length, kept and dropped", "Characters of extracted text; dropped documents without text (dropped before extraction) are left out.");
  const L = R.lengths || {};
  histogram(ln, L.edges, [["kept", L.kept || [], "kept"], ["dropped", L.dropped || [], "dropped"]], "characters");

  const tk = section("tokens", "Tokens");
  const S = R.shards;
  if (!S) empty(tk, "no tokenize stage in this run"); else {
    tk.appendChild(h("p", {text: fmt(S.tokens) + " tokens in " + fmt(S.count) + " shards (" + S.dtype + "), tokenizer " + S.tokenizer.name + ", vocabulary " + fmt(S.tokenizer.vocab_size) + "."}));
    tk.appendChild(h("h3", {text: "Tokens per document"}));
    histogram(tk, S.tokens_histogram && S.tokens_histogram.edges, [["bar", (S.tokens_histogram || {}).counts || [], "documents"]], "tokens");
    tk.appendChild(h("h3", {text: "Tokens per language"}));
    bars(tk, Object.entries(S.tokens_by_lang || {}), "bar", "tokens");
    tk.appendChild(h("h3", {text: "Tokens per shard"}));
    tk.appendChild(table([{title: "shard", get: r => r.file, width: "20%"}, {title: "documents", get: r => r.rows, num: true},
      {title: "tokens", get: r => r.tokens, num: true}, {title: "bytes", get: r => r.bytes, num: true},
      {title: "", width: "45%", get: r => track([["bar", r.tokens]], Math.max(...S.per_shard.map(x => x.tokens)))}], S.per_shard || []));
  }
  const src = section("sources", "Sources of the kept documents (site / first path segment)");
  bars(src, Object.entries((R.documents || {}).sections || {}), "bar", "documents");

  const cf = section("config", "Configuration", "config.yaml: rerun with `thresher run config.yaml`.");
  cf.appendChild(h("pre", {text: R.config || "(no config.yaml)"}));
  if (R.verify) { const v = section("verify", "Verify"); v.appendChild(h("pre", {text: R.verify.ok ? "OK" : R.verify.problems.join("\n")})); }
}

function compareReport() {
  const C = R.compare;
  document.getElementById("title").textContent = "Thresher comparison";
  const sum = section("summary", "Runs");
  const ta = C.totals.a || {}, tb = C.totals.b || {};
  sum.appendChild(table([{title: "", get: r => r[0], width: "12%"}, {title: "run", get: r => r[1], label: true},
    {title: "read", get: r => r[2].read, num: true}, {title: "kept", get: r => r[2].kept, num: true},
    {title: "dropped", get: r => r[2].dropped, num: true}, {title: "errored", get: r => r[2].errored, num: true}],
    [["A", C.a, ta], ["B", C.b, tb]]));
  const f = section("funnel", "Funnel, A beside B", "Documents kept per stage; the bars share one scale.");
  f.appendChild(legend([["kept", "A"], ["b", "B"]]));
  const max = Math.max(1, ...C.funnel.flatMap(r => r.in.filter(x => x !== null)));
  f.appendChild(table([
    {title: "stage", get: r => r.stage, width: "14%"}, {title: "in A", get: r => r.in[0], num: true}, {title: "in B", get: r => r.in[1], num: true},
    {title: "kept A", get: r => r.kept[0], num: true}, {title: "kept B", get: r => r.kept[1], num: true},
    {title: "B − A", get: r => (r.kept_delta > 0 ? "+" : "") + fmt(r.kept_delta), num: true},
    {title: "", width: "35%", get: r => h("div", {}, track([["kept", r.kept[0] || 0]], max), track([["b", r.kept[1] || 0]], max))},
  ], C.funnel));
  const rs = section("reasons", "Drops by reason", "Reasons whose counts differ first.");
  rs.appendChild(table([{title: "reason", get: r => r.reason, label: true, width: "40%"}, {title: "A", get: r => r.a, num: true},
    {title: "B", get: r => r.b, num: true}, {title: "B − A", get: r => (r.delta > 0 ? "+" : "") + fmt(r.delta), num: true}], C.reasons));
  const d = C.documents;
  const dc = section("documents", "Documents kept by one run and not the other");
  dc.appendChild(h("p", {text: "kept by both " + fmt(d.both) + ", only by A " + fmt(d.only_a) + ", only by B " + fmt(d.only_b) + "."}));
  for (const [side, other] of [["a", "b"], ["b", "a"]]) {
    dc.appendChild(h("h3", {text: "Kept only by " + side.toUpperCase() + ": what " + other.toUpperCase() + " dropped them for"}));
    bars(dc, Object.entries(d["only_" + side + "_dropped_in_" + other + "_by"]), "dropped", "documents");
    const ex = d["only_" + side + "_examples"];
    if (ex.length) dc.appendChild(table([{title: "id", get: r => r.id, width: "22%"}, {title: "url", get: r => r.url || "", label: true},
      {title: other.toUpperCase() + " dropped it for", get: r => r[other] || "not in its rejected/", label: true}], ex));
  }
}

document.getElementById("subtitle").textContent = R.compare ? "A " + R.compare.a + "  ·  B " + R.compare.b : R.dir;
if (R.compare) compareReport(); else runReport();
