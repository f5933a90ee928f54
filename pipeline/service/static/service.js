// thresher serve's pages: each fills <main id="page"> from the JSON API. Text from runs (documents,
// URLs, errors, logs) is only ever set with textContent: crawled markup is shown, never parsed.
(function () {
"use strict";
const body = document.body, root = document.getElementById("page");
const DATA = JSON.parse(document.getElementById("report-data").textContent || "{}");
const fmt = v => (v === null || v === undefined) ? "–" : (typeof v === "number" ? v.toLocaleString("en-US") : String(v));

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.appendChild(typeof k === "string" ? document.createTextNode(k) : k);
  return e;
}
async function api(path, opts) {
  const r = await fetch(path, Object.assign({headers: {"Content-Type": "application/json"}, credentials: "same-origin"}, opts || {}));
  const text = await r.text();
  let data = text;
  try { data = JSON.parse(text); } catch (e) { /* the log is text */ }
  if (!r.ok) throw new Error(typeof data === "object" && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : r.status + " " + text);
  return data;
}
const post = (path, payload) => api(path, {method: "POST", body: JSON.stringify(payload || {})});
const when = t => t ? new Date(t * 1000).toLocaleString() : "–";
const took = j => j.started ? (((j.finished || Date.now() / 1000) - j.started).toFixed(0) + " s") : "–";
function state(s) { return h("span", {class: "state " + s, text: s}); }
function progress(j) {
  const p = j.progress;
  if (!p) return h("span", {class: "sub", text: j.state === "queued" ? "waiting" : ""});
  if (p.dry_run) return h("span", {text: "dry run: built and validated"});
  const frac = p.fraction === undefined ? null : p.fraction;
  const bar = h("progress", {class: "progress", max: "1", value: frac === null ? undefined : String(frac)});
  return h("span", {}, bar, " " + (frac === null ? "" : (100 * frac).toFixed(0) + "% read, ") + fmt(p.records) + " records" + (p.written ? ", " + fmt(p.written) + " written" : ""));
}
function actions(j, after) {
  const out = h("span", {class: "actions"});
  const act = (label, verb) => out.appendChild(h("button", {type: "button", class: verb, text: label, onclick: async () => {
    try { const r = await post(`/api/jobs/${encodeURIComponent(j.id)}/${verb}`); if (after) after(r); } catch (e) { alert(e.message); }
  }}));
  if (j.state === "queued" || j.state === "running") act("Cancel", "cancel");
  if (["interrupted", "failed", "cancelled"].includes(j.state)) act("Resume", "resume");
  if (!["queued", "running"].includes(j.state)) act("Rerun", "rerun");
  return out;
}

// ---- the runs list -----------------------------------------------------------------------------
function jobsPage() {
  const counts = h("p", {class: "sub", id: "counts"});
  const table = h("table", {id: "jobs"});
  root.append(h("p", {}, h("a", {href: "/submit", text: "Submit a run"}), "  ·  ", h("a", {href: "/compare", text: "Compare two runs"})), counts, table);
  async function refresh() {
    try {
      const r = await api("/api/jobs?limit=200");
      counts.textContent = Object.entries(r.counts).map(([k, v]) => v + " " + k).join(", ") || "no jobs yet";
      table.replaceChildren(h("tr", {}, ...["job", "name", "state", "progress", "runner", "submitted", "time", "", ""].map(t => h("th", {text: t}))));
      for (const j of r.jobs) {
        table.appendChild(h("tr", {"data-job": j.id, "data-state": j.state},
          h("td", {}, h("a", {href: "/jobs/" + encodeURIComponent(j.id), text: j.id})), h("td", {text: j.name}),
          h("td", {}, state(j.state)), h("td", {}, progress(j)), h("td", {text: j.spec.runner || "direct"}),
          h("td", {text: when(j.created)}), h("td", {class: "num", text: took(j)}),
          h("td", {}, j.run ? h("a", {href: "/runs/" + encodeURIComponent(j.id), class: "run-link", text: "run page"}) : null),
          h("td", {}, actions(j, refresh))));
      }
    } catch (e) { counts.textContent = "could not list the jobs: " + e.message; }
  }
  refresh();
  setInterval(refresh, 1000);
}

// ---- the submit form ---------------------------------------------------------------------------
function submitPage() {
  const field = (label, hint, input) => h("div", {}, h("label", {}, label + " ", h("span", {class: "hint", text: hint})), input);
  const name = h("input", {type: "text", id: "name", name: "name", placeholder: "sample run"});
  const recipe = h("textarea", {id: "recipe", name: "recipe", placeholder: "stages:\n  gopher_quality:\n    min_doc_words: 80"});
  const inputs = h("textarea", {id: "inputs", name: "inputs", style: "height: 4em", placeholder: "/data/crawl/*.warc.gz"});
  const runner = h("select", {id: "runner", name: "runner"}, ...["direct", "portable", "spark", "flink", "DataflowRunner"].map(r => h("option", {value: r, text: r})));
  const workers = h("input", {type: "number", id: "workers", name: "workers", min: "1", max: "64", value: "1"});
  const only = h("input", {type: "text", id: "only", name: "only", placeholder: "langid,gopher_quality"});
  const options = h("textarea", {id: "options", name: "options", style: "height: 4em", placeholder: "--job_endpoint=localhost:8099"});
  const err = h("p", {class: "error", id: "error"});
  const form = h("form", {id: "submit-form"},
    field("Name", "a label for the runs list", name),
    field("Recipe (YAML)", "empty: the built-in defaults; the same file `thresher run recipe.yaml` takes", recipe),
    field("Inputs", "one path or glob per line, under the service's roots (" + (DATA.roots || []).join(", ") + "); empty: the embedded sample", inputs),
    field("Runner", "", runner), field("Workers", "local worker processes, or Spark's local[N]", workers),
    field("Only these stages", "comma-separated; empty: the recipe's", only),
    field("Beam options", "one --name=value per line (Dataflow's --project, a job service's --job_endpoint, ...)", options),
    h("button", {type: "submit", id: "submit", text: "Submit"}), err);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    err.textContent = "";
    const lines = t => t.value.split("\n").map(x => x.trim()).filter(Boolean);
    try {
      const job = await post("/api/jobs", {name: name.value.trim(), recipe: recipe.value, inputs: lines(inputs), runner: runner.value,
                                           workers: parseInt(workers.value || "0", 10) || 0, only: only.value.trim(), options: lines(options)});
      location.href = "/jobs/" + encodeURIComponent(job.id);
    } catch (e) { err.textContent = e.message; }
  });
  root.appendChild(form);
}

// ---- one job -------------------------------------------------------------------------------------
function jobPage() {
  const id = body.dataset.job;
  const info = h("div", {id: "job"}), log = h("pre", {class: "log", id: "log"});
  root.append(info, h("h2", {text: "Log"}), log);
  let timer = null;
  async function refresh() {
    try {
      const j = await api("/api/jobs/" + encodeURIComponent(id));
      const rows = [["state", state(j.state)], ["progress", progress(j)], ["run directory", j.output],
        ["runner", (j.spec.runner || "direct") + (j.remote_job_id ? " · remote job " + j.remote_job_id : "")],
        ["submitted", when(j.created)], ["started", when(j.started)], ["finished", when(j.finished)], ["attempts", fmt(j.attempts)]];
      if (j.rerun_of) rows.push(["rerun of", h("a", {href: "/jobs/" + encodeURIComponent(j.rerun_of), text: j.rerun_of})]);
      const t = h("table", {}, ...rows.map(([k, v]) => h("tr", {}, h("th", {text: k, style: "width: 12em"}), h("td", {"data-key": k}, v))));
      info.replaceChildren(t);
      if (j.error) info.appendChild(h("pre", {class: "error", id: "job-error", text: j.error}));
      info.appendChild(h("p", {}, j.run ? h("a", {href: "/runs/" + encodeURIComponent(j.id), id: "run-link", text: "Open the run page"}) : null, " ", actions(j, r => { if (r.id !== id) location.href = "/jobs/" + encodeURIComponent(r.id); else refresh(); })));
      log.textContent = await api("/api/jobs/" + encodeURIComponent(id) + "/log?max_bytes=20000");
      if (["queued", "running"].includes(j.state)) { if (!timer) timer = setInterval(refresh, 1000); }
      else if (timer) { clearInterval(timer); timer = null; }
    } catch (e) { info.textContent = e.message; }
  }
  refresh();
}

// ---- a run: the report (report.js draws it) and links onward -------------------------------------
function runPage() {
  const id = encodeURIComponent(body.dataset.job);
  root.append(h("p", {}, h("a", {href: "/jobs/" + id, text: "job and log"}), "  ·  ",
    h("a", {href: "/runs/" + id + "/documents?kind=dropped", text: "dropped documents"}), "  ·  ",
    h("a", {href: "/runs/" + id + "/documents?kind=kept", text: "kept documents"}), "  ·  ",
    h("a", {href: "/runs/" + id + "/signals", text: "signals and thresholds"}), "  ·  ",
    h("a", {href: "/compare?a=" + id, text: "compare with another run"})));
}

// ---- documents, a page at a time ------------------------------------------------------------------
function documentsPage() {
  const id = encodeURIComponent(body.dataset.job);
  const q = new URLSearchParams(location.search);
  const kind = q.get("kind") === "kept" ? "kept" : "dropped";
  const offset = parseInt(q.get("offset") || "0", 10) || 0, limit = 20;
  const go = changes => { const n = new URLSearchParams(q); for (const [k, v] of Object.entries(changes)) { if (v) n.set(k, v); else n.delete(k); } location.search = n.toString(); };
  const kindSel = h("select", {id: "kind", onchange: e => go({kind: e.target.value, reason: "", offset: ""})},
    ...["dropped", "kept"].map(k => h("option", {value: k, text: k + " documents", selected: k === kind ? "" : undefined})));
  const reasonSel = h("select", {id: "reason", onchange: e => go({reason: e.target.value, offset: ""})},
    h("option", {value: "", text: "every reason"}), ...(DATA.reasons || []).map(r => h("option", {value: r, text: r, selected: r === q.get("reason") ? "" : undefined})));
  const langSel = h("select", {id: "lang", onchange: e => go({lang: e.target.value, offset: ""})},
    h("option", {value: "", text: "every language"}), ...(DATA.languages || []).map(l => h("option", {value: l, text: l, selected: l === q.get("lang") ? "" : undefined})));
  const summary = h("p", {class: "sub", id: "summary"}), list = h("div", {id: "documents"}), pager = h("div", {class: "pager"});
  root.append(h("p", {}, h("a", {href: "/runs/" + id, text: "← the run"})), h("div", {class: "filters"}, kindSel, kind === "dropped" ? reasonSel : null, langSel), summary, list, pager);
  const params = new URLSearchParams({kind: kind, offset: String(offset), limit: String(limit)});
  for (const k of ["reason", "lang", "stage"]) if (q.get(k)) params.set(k, q.get(k));
  api("/api/runs/" + id + "/documents?" + params).then(r => {
    summary.textContent = fmt(r.total) + " " + kind + " documents" + (r.reason ? " for " + (r.stage ? r.stage + "." : "") + r.reason : "") +
      (r.lang ? " in " + r.lang : "") + (r.total ? "; showing " + fmt(r.offset + 1) + "–" + fmt(r.offset + r.rows.length) : "");
    for (const d of r.rows) {
      const box = h("div", {class: "doc " + kind, "data-id": d.id});
      box.appendChild(h("div", {}, h("code", {text: d.id}), "  ", h("span", {class: "label", text: d.url || ""})));
      if (kind === "dropped") {
        box.appendChild(h("div", {}, h("strong", {class: "reason", text: d.stage + "." + d.reason}), d.errored ? " (error)" : ""));
        if (d.detail) box.appendChild(h("div", {}, "fired: ", h("mark", {class: "fired", text: d.detail})));
      } else if (d.lang) box.appendChild(h("div", {text: "lang " + d.lang + (d.fields && d.fields.lang_score !== undefined ? " (" + (+d.fields.lang_score).toFixed(3) + ")" : "")}));
      box.appendChild(h("pre", {class: "text", text: (d.text || "(no text: dropped before extraction)") + (d.truncated ? " …" : "")}));
      const sig = Object.entries(kind === "dropped" ? (d.signals || {}) : (d.fields || {}));
      if (sig.length) {
        const p = h("div", {class: "signals"}, "signals: ");
        sig.forEach(([k, v], i) => {
          const txt = k + " " + (typeof v === "number" ? +v.toFixed(4) : JSON.stringify(v));
          p.appendChild(k === d.fired ? h("mark", {text: txt}) : document.createTextNode(txt));
          if (i < sig.length - 1) p.appendChild(document.createTextNode(", "));
        });
        box.appendChild(p);
      }
      list.appendChild(box);
    }
    if (!r.rows.length) list.appendChild(h("p", {class: "empty", text: "(no such documents" + (kind === "dropped" ? "; rejected_sample may have left them out" : "") + ")"}));
    if (offset > 0) pager.appendChild(h("button", {type: "button", id: "prev", text: "← previous", onclick: () => go({offset: String(Math.max(0, offset - limit))})}));
    if (offset + limit < r.total) pager.appendChild(h("button", {type: "button", id: "next", text: "next →", onclick: () => go({offset: String(offset + limit)})}));
  }).catch(e => { summary.textContent = e.message; });
}

// ---- a filter's signal with its threshold ---------------------------------------------------------
function signalsPage() {
  const id = encodeURIComponent(body.dataset.job);
  const rules = DATA.rules || [];
  root.appendChild(h("p", {}, h("a", {href: "/runs/" + id, text: "← the run"})));
  if (!rules.length) {
    root.appendChild(h("p", {class: "empty", text: "(the run's documents carry no filter signals: run the recipe with annotate: true on its filters to see every document's)"}));
    return;
  }
  const ruleSel = h("select", {id: "rule"}, ...rules.map((r, i) => h("option", {value: String(i), text: r.stage + "." + r.rule + " (" + r.signal + " " + r.op + " " + r.threshold + " drops)"})));
  const langSel = h("select", {id: "signal-lang"}, h("option", {value: "", text: "every language"}), ...(DATA.languages || []).map(l => h("option", {value: l, text: l})));
  const out = h("div", {id: "signal"});
  root.append(h("div", {class: "filters"}, ruleSel, langSel), out);
  async function draw() {
    const r = rules[+ruleSel.value];
    const lang = langSel.value;
    try {
      const d = await api(`/api/runs/${id}/signals/${encodeURIComponent(r.stage)}/${encodeURIComponent(r.rule)}` + (lang ? "?lang=" + encodeURIComponent(lang) : ""));
      out.replaceChildren(h("p", {text: `${fmt(d.documents)} documents (${d.note}); the rule drops those with ${d.signal} ${d.op} ${d.threshold}: ` +
        `${fmt(d.fires)} (${d.documents ? (100 * d.fires / d.documents).toFixed(1) : 0}%).`}), histogramWithThreshold(d));
    } catch (e) { out.textContent = e.message; }
  }
  ruleSel.addEventListener("change", draw); langSel.addEventListener("change", draw);
  draw();
}
function histogramWithThreshold(d) {
  const NS = "http://www.w3.org/2000/svg", W = 1000, H = 260, L = 60, B = 40, T = 10, R = 20;
  const s = (tag, attrs, parent) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (parent) parent.appendChild(e); return e; };
  const svg = s("svg", {viewBox: `0 0 ${W} ${H + B + T}`, role: "img", id: "signal-histogram"});
  if (!d.edges.length) return h("p", {class: "empty", text: "(no values)"});
  const lo = d.edges[0], hi = d.edges[d.edges.length - 1], x = v => L + (W - L - R) * (v - lo) / (hi - lo || 1);
  const max = Math.max(1, ...d.counts);
  s("line", {class: "axis", x1: L, y1: T + H, x2: W - R, y2: T + H}, svg);
  s("line", {class: "axis", x1: L, y1: T, x2: L, y2: T + H}, svg);
  d.counts.forEach((c, i) => {
    const a = d.edges[i], b = d.edges[i + 1], bh = H * c / max;
    const fires = d.op === "<" ? b <= d.threshold : a >= d.threshold;
    const r = s("rect", {x: x(a) + 1, y: T + H - bh, width: Math.max(1, x(b) - x(a) - 2), height: bh, style: "fill: var(--" + (fires ? "dropped" : "kept") + ")"}, svg);
    s("title", {}, r).textContent = `${fmt(c)} documents with ${d.signal} in ${a.toFixed(3)}–${b.toFixed(3)}`;
  });
  for (let k = 0; k <= 5; k++) { const v = lo + (hi - lo) * k / 5; s("text", {x: x(v), y: T + H + 16, "text-anchor": "middle"}, svg).textContent = (+v.toFixed(3)).toString(); }
  s("text", {x: L - 6, y: T + 10, "text-anchor": "end"}, svg).textContent = fmt(max);
  const tx = x(d.threshold);
  s("line", {x1: tx, y1: T, x2: tx, y2: T + H, style: "stroke: #b8333a; stroke-width: 2; stroke-dasharray: 6 3", id: "threshold"}, svg);
  const right = tx > W - 200;  // the label on the side with room
  s("text", {x: right ? tx - 4 : tx + 4, y: T + 12, "text-anchor": right ? "end" : "start"}, svg).textContent = "threshold " + d.threshold;
  s("text", {x: (W + L) / 2, y: T + H + 34, "text-anchor": "middle"}, svg).textContent = d.signal + " (orange: the rule drops these)";
  return svg;
}

// ---- compare ------------------------------------------------------------------------------------
function comparePick() {
  const runs = DATA.runs || [], q = new URLSearchParams(location.search);
  const sel = (id, chosen) => h("select", {id: id, name: id}, h("option", {value: "", text: "choose a run"}),
    ...runs.map(r => h("option", {value: r.id, text: r.id + "  " + r.name, selected: r.id === chosen ? "" : undefined})));
  const a = sel("a", q.get("a")), b = sel("b", q.get("b"));
  const form = h("form", {id: "compare-form", method: "get", action: "/compare"}, h("label", {text: "Run A"}), a, h("label", {text: "Run B"}), b,
    h("button", {type: "submit", id: "compare", text: "Compare"}));
  root.appendChild(runs.length >= 2 ? form : h("p", {class: "empty", text: "(two finished runs are needed)"}));
}
function comparePage() {
  const ids = DATA.ids || {};
  root.appendChild(h("p", {}, "A ", h("a", {href: "/runs/" + encodeURIComponent(ids.a), text: ids.a}), "  ·  B ",
    h("a", {href: "/runs/" + encodeURIComponent(ids.b), text: ids.b}), "  ·  ", h("a", {href: "/compare", text: "compare others"})));
}

// ---- sign in ------------------------------------------------------------------------------------
function loginPage() {
  const token = h("input", {type: "password", id: "token", autocomplete: "current-password"}), err = h("p", {class: "error"});
  const form = h("form", {}, h("label", {text: "Access token"}), token, h("button", {type: "submit", text: "Sign in"}), err);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    try {
      await post("/api/login", {token: token.value});
      const next = new URLSearchParams(location.search).get("next") || "/";
      location.href = /^\/(?![\/\\])/.test(next) ? next : "/";  // this server's pages only
    } catch (e) { err.textContent = e.message; }
  });
  root.appendChild(form);
}

({jobs: jobsPage, submit: submitPage, job: jobPage, run: runPage, documents: documentsPage, signals: signalsPage,
  "compare-pick": comparePick, compare: comparePage, login: loginPage})[body.dataset.page]();
})();
