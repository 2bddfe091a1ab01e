// gearbox dashboard: reads the live feed (/api/events, server-sent events) and calls the JSON
// API. No framework, no build step: the table reuses its rows, the charts are drawn on canvas.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const PAGE = 100;
  const HISTORY = 600;

  // What the stream asks for: changed by the filter box, the headers and the pager.
  const view = { filter: "", sort: "function", desc: false, offset: 0 };
  let source = null;
  let retry = null;
  let history = [];
  let matched = 0;
  let selected = null;

  // ---- the live feed ----

  function connect() {
    if (source) source.close();
    clearTimeout(retry);
    const q = new URLSearchParams({
      filter: view.filter, sort: view.sort, desc: String(view.desc),
      offset: String(view.offset), limit: String(PAGE),
    });
    source = new EventSource("/api/events?" + q.toString());
    setFeed("connecting…", "");
    source.addEventListener("history", (e) => {
      history = JSON.parse(e.data).samples;
      drawCharts();
    });
    source.addEventListener("snapshot", (e) => {
      const s = JSON.parse(e.data);
      setFeed("live", "live");
      const last = history[history.length - 1];
      if (!last || last.time_ms !== s.totals.time_ms) {
        history.push(s.totals);
        if (history.length > HISTORY) history.shift();
      }
      showTotals(s.totals);
      showRows(s);
      drawCharts();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (too many streams) or gone: try again later ourselves.
        setFeed("disconnected, retrying", "down");
        retry = setTimeout(connect, 5000);
      } else {
        setFeed("reconnecting…", "down");
      }
    };
  }

  function setFeed(text, cls) {
    const f = $("feed");
    f.textContent = text;
    f.className = "feed " + cls;
  }

  let reconnectTimer = null;
  function reconnectSoon() {
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, 200);
  }

  // ---- totals ----

  const fmt = (n) => (n >= 100 || Number.isInteger(n) ? Math.round(n).toLocaleString("en") : n.toFixed(1));

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function showTotals(t) {
    const q = t.queued;
    setText($("t-submitted"), fmt(t.submitted_per_s));
    setText($("t-completed"), fmt(t.completed_per_s));
    setText($("t-queued"), fmt(q.high + q.normal + q.low));
    setText($("t-queued-prio"), "h " + fmt(q.high) + " · n " + fmt(q.normal) + " · l " + fmt(q.low));
    setText($("t-running"), fmt(t.running));
    setText($("t-functions"), fmt(t.functions));
    setText($("t-workers"), fmt(t.workers));
    setText($("t-clients"), fmt(t.clients));
  }

  // ---- the functions table: rows are reused, only changed cells are written ----

  const body = document.querySelector("#functions tbody");
  const pool = [];
  const CELLS = [
    ["name", (f) => f.function],
    ["num", (f) => fmt(f.queued.high + f.queued.normal + f.queued.low)],
    ["num prio", (f) => fmt(f.queued.high)],
    ["num prio", (f) => fmt(f.queued.normal)],
    ["num prio", (f) => fmt(f.queued.low)],
    ["num", (f) => fmt(f.running)],
    ["num", (f) => fmt(f.workers)],
    ["num", (f) => fmt(f.total)],
  ];

  function row(i) {
    if (!pool[i]) {
      const tr = document.createElement("tr");
      for (const [cls] of CELLS) {
        const td = document.createElement("td");
        td.className = cls;
        tr.appendChild(td);
      }
      pool[i] = tr;
    }
    if (!pool[i].parentNode) body.appendChild(pool[i]);
    return pool[i];
  }

  function showRows(s) {
    matched = s.matched;
    s.functions.forEach((f, i) => {
      const tr = row(i);
      if (tr.dataset.function !== f.function) tr.dataset.function = f.function;
      tr.classList.toggle("selected", f.function === selected);
      CELLS.forEach(([, value], j) => setText(tr.children[j], value(f)));
      tr.children[0].title = f.function;
    });
    for (let i = s.functions.length; i < pool.length && pool[i].parentNode; i++) {
      pool[i].remove();
    }
    const first = s.functions.length ? s.offset + 1 : 0;
    setText($("page-info"), first + "–" + (s.offset + s.functions.length) + " of " + matched);
    $("prev").disabled = s.offset === 0;
    $("next").disabled = s.offset + s.functions.length >= matched;
  }

  body.addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (!tr || !tr.dataset.function) return;
    selected = tr.dataset.function;
    $("mq-function").value = selected;
    for (const r of body.children) r.classList.toggle("selected", r === tr);
  });

  for (const th of document.querySelectorAll("#functions th[data-sort]")) {
    // Sortable from the keyboard too.
    th.tabIndex = 0;
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        th.click();
      }
    });
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      view.desc = view.sort === key ? !view.desc : key !== "function";
      view.sort = key;
      view.offset = 0;
      markSorted();
      reconnectSoon();
    });
  }

  function markSorted() {
    for (const th of document.querySelectorAll("#functions th[data-sort]")) {
      th.classList.toggle("sorted", th.dataset.sort === view.sort);
      th.classList.toggle("desc", th.dataset.sort === view.sort && view.desc);
    }
  }

  $("filter").addEventListener("input", (e) => {
    view.filter = e.target.value.trim();
    view.offset = 0;
    reconnectSoon();
  });
  $("prev").addEventListener("click", () => {
    view.offset = Math.max(0, view.offset - PAGE);
    reconnectSoon();
  });
  $("next").addEventListener("click", () => {
    if (view.offset + PAGE < matched) view.offset += PAGE;
    reconnectSoon();
  });

  // ---- charts: plain canvas ----

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  // The axis top: four steps of 1, 2 or 5 times a power of ten, at least v.
  function niceMax(v) {
    if (v <= 0) return 4;
    const step = v / 4;
    const p = Math.pow(10, Math.floor(Math.log10(step)));
    for (const m of [1, 2, 5, 10]) if (m * p >= step) return 4 * m * p;
    return 40 * p;
  }

  // series: [{values: [numbers], color, fill}] over history's times.
  function draw(canvas, series) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const c = canvas.getContext("2d");
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, h);
    const left = 44, right = 6, top = 6, bottom = 18;
    const pw = w - left - right, ph = h - top - bottom;
    let max = 0;
    for (const s of series) for (const v of s.values) max = Math.max(max, v);
    max = niceMax(max);
    c.font = "11px system-ui, sans-serif";
    c.fillStyle = css("--muted");
    c.strokeStyle = css("--line");
    c.lineWidth = 1;
    c.textAlign = "right";
    c.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      c.beginPath();
      c.moveTo(left, Math.round(y) + 0.5);
      c.lineTo(left + pw, Math.round(y) + 0.5);
      c.stroke();
      c.fillText(fmt((max * i) / 4), left - 4, y);
    }
    if (history.length === 0) return;
    const now = history[history.length - 1].time_ms;
    const span = Math.max(60000, now - history[0].time_ms);
    const x = (t) => left + pw - ((now - t) / span) * pw;
    c.textAlign = "center";
    c.textBaseline = "top";
    for (let m = 0; m * 60000 <= span; m += span > 300000 ? 2 : 1) {
      c.fillText(m === 0 ? "now" : "-" + m + "m", Math.min(Math.max(x(now - m * 60000), left + 10), left + pw - 10), top + ph + 4);
    }
    for (const s of series) {
      c.strokeStyle = s.color;
      c.lineWidth = 1.5;
      c.beginPath();
      s.values.forEach((v, i) => {
        const px = x(history[i].time_ms);
        const py = top + ph - (v / max) * ph;
        // A gap in the samples (no stream open for a while) breaks the line.
        const gap = i > 0 && history[i].time_ms - history[i - 1].time_ms > 5000;
        if (i === 0 || gap) c.moveTo(px, py);
        else c.lineTo(px, py);
      });
      c.stroke();
      // The latest value as a dot: visible from the first sample on.
      const last = s.values.length - 1;
      if (last >= 0) {
        c.fillStyle = s.color;
        c.beginPath();
        c.arc(x(history[last].time_ms), top + ph - (s.values[last] / max) * ph, 2.5, 0, 2 * Math.PI);
        c.fill();
      }
    }
  }

  let drawQueued = false;
  function drawCharts() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      draw($("chart-throughput"), [
        { values: history.map((t) => t.submitted_per_s), color: css("--c-submitted") },
        { values: history.map((t) => t.completed_per_s), color: css("--c-completed") },
      ]);
      draw($("chart-queue"), [
        { values: history.map((t) => t.queued.high), color: css("--c-high") },
        { values: history.map((t) => t.queued.normal), color: css("--c-normal") },
        { values: history.map((t) => t.queued.low), color: css("--c-low") },
        { values: history.map((t) => t.running), color: css("--c-running") },
      ]);
    });
  }
  window.addEventListener("resize", drawCharts);

  // ---- the JSON API: look-up, cancel, maxqueue; the server's errors are shown as they are ----

  async function call(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { ok: false, error: "the server is not reachable: " + e.message };
    }
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch (e) {
      json = null;
    }
    if (!res.ok) {
      const why = json && json.error ? json.error : text.trim() || res.statusText;
      return { ok: false, error: res.status + ": " + why };
    }
    return { ok: true, json };
  }

  function say(el, text, ok) {
    el.textContent = text;
    el.className = ok ? "ok" : "error";
  }

  let lookedUp = null;
  async function lookup(kind) {
    const key = $("lookup-input").value.trim();
    const out = $("lookup-result");
    $("cancel").disabled = true;
    lookedUp = null;
    if (!key) return say(out, "give a handle or a unique id", false);
    const path = (kind === "handle" ? "/api/jobs/" : "/api/unique/") + encodeURIComponent(key);
    const r = await call("GET", path);
    if (!r.ok) return say(out, r.error, false);
    const j = r.json;
    let text = (j.running ? "running" : "queued") + " · progress " + j.numerator + "/" + j.denominator;
    if (j.clients !== undefined) text += " · clients waiting " + j.clients;
    say(out, key + ": " + text, true);
    if (kind === "handle" && !j.running) {
      lookedUp = key;
      $("cancel").disabled = false;
    }
  }
  $("lookup-handle").addEventListener("click", () => lookup("handle"));
  $("lookup-unique").addEventListener("click", () => lookup("unique"));
  $("lookup-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter") lookup(e.target.value.trim().startsWith("H:") ? "handle" : "unique");
  });
  $("cancel").addEventListener("click", async () => {
    if (!lookedUp) return;
    const handle = lookedUp;
    const r = await call("POST", "/api/jobs/" + encodeURIComponent(handle) + "/cancel");
    if (!r.ok) return say($("lookup-result"), r.error, false);
    $("cancel").disabled = true;
    lookedUp = null;
    say($("lookup-result"), "cancelled " + handle, true);
  });

  $("mq-set").addEventListener("click", async () => {
    const f = $("mq-function").value.trim();
    const v = $("mq-value").value.trim();
    const out = $("mq-result");
    if (!f) return say(out, "choose a function (click a row)", false);
    if (!/^\d+$/.test(v)) return say(out, "give a limit: a whole number, 0 = unlimited", false);
    const r = await call("PUT", "/api/maxqueue/" + encodeURIComponent(f), { all: Number(v) });
    if (!r.ok) return say(out, r.error, false);
    say(out, f + ": at most " + (r.json.normal === 0 ? "unlimited" : r.json.normal) + " queued per priority", true);
  });

  // ---- connections: read while the panel is open ----

  const MAX_CONNS = 200;
  let connTimer = null;
  async function loadConns() {
    const r = await call("GET", "/api/workers");
    const tbody = document.querySelector("#conn-table tbody");
    if (!r.ok) return say($("conn-note"), r.error, false);
    const list = r.json;
    list.sort((a, b) => b.functions.length - a.functions.length || a.fd - b.fd);
    const rows = list.slice(0, MAX_CONNS).map((c) => {
      const tr = document.createElement("tr");
      for (const v of [String(c.fd), c.ip, c.client_id, c.functions.join(" ")]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      }
      return tr;
    });
    tbody.replaceChildren(...rows);
    $("conn-note").className = "note";
    $("conn-note").textContent = list.length > MAX_CONNS
      ? "first " + MAX_CONNS + " of " + list.length + " connections (workers first)"
      : list.length + " connections";
  }
  $("conns").addEventListener("toggle", (e) => {
    clearInterval(connTimer);
    if (e.target.open) {
      loadConns();
      connTimer = setInterval(loadConns, 5000);
    }
  });

  // ---- the cluster (cluster members only): members and cluster-wide totals, every 5 s ----

  const MAX_CLUSTER_ROWS = 200;
  function cells(values, numFrom) {
    const tr = document.createElement("tr");
    values.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = String(v);
      if (i >= numFrom) td.className = "num";
      tr.appendChild(td);
    });
    return tr;
  }
  let clusterTimer = null;
  async function loadCluster() {
    const r = await call("GET", "/api/cluster");
    if (!r.ok) {
      if (!$("cluster").hidden) say($("cluster-note"), r.error, false);
      return;
    }
    const c = r.json;
    if (!c.cluster) {
      $("cluster").hidden = true;
      clearInterval(clusterTimer);
      return;
    }
    $("cluster").hidden = false;
    const members = c.members.map((m) => {
      const tr = cells([m.id, m.address, m.heartbeat_age_ms, m.jobs_held, m.connections, m.workers], 2);
      if (m.this) tr.classList.add("this");
      return tr;
    });
    document.querySelector("#cluster-members tbody").replaceChildren(...members);
    const fns = c.functions.slice(0, MAX_CLUSTER_ROWS)
      .map((f) => cells([f.function, f.free, f.queued, f.running, f.workers], 1));
    document.querySelector("#cluster-functions tbody").replaceChildren(...fns);
    const t = c.totals;
    document.querySelector("#cluster-functions tfoot").replaceChildren(
      cells(["cluster total", t.free, t.queued, t.running, t.workers + " connections"], 1));
    $("cluster-note").className = "note";
    $("cluster-note").textContent = "seen from " + (c.member || "?") + " · " + t.members + " members"
      + (c.functions.length > MAX_CLUSTER_ROWS ? " · first " + MAX_CLUSTER_ROWS + " of " + c.functions.length + " functions" : "");
  }
  loadCluster();
  clusterTimer = setInterval(loadCluster, 5000);

  markSorted();
  connect();
})();
