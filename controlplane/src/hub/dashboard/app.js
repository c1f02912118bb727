// skua's dashboard. Everything captured (URLs, headers, bodies, console
// lines, agent sources) is untrusted: it only ever reaches the page as
// text (textContent, text nodes, input values), never as markup. Items and
// console lines may have any shape (agents reshape them: numbers where
// strings are expected, objects, huge or binary strings): every field goes
// through txt()/timeOf(), and an event that still fails to render is
// counted and skipped, never allowed to break its stream.
"use strict";

var token = "";
var view = "items";
var items = [];            // newest last, at most MAX_ROWS
var MAX_ROWS = 500;
var paused = false;
var itemsStream = null;
var consoleStream = null;
var selectedId = null;
var current = null;        // the agent open in the editor: {name, active} or null
var examples = [];
var unrendered = 0;         // events that could not be shown (counted, skipped)
var CELL_MAX = 300;         // characters of one table cell
var TEXT_MAX = 65536;       // characters of one body or JSON view

function $(id) { return document.getElementById(id); }

function isObj(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

// Any value as text: strings as they are, objects as JSON, nothing as "".
function txt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  try { return JSON.stringify(v); } catch (e) { return String(v); }
}

// At most n characters, saying how many more there were.
function clip(s, n) {
  s = txt(s);
  return s.length > n ? s.slice(0, n) + "… (" + (s.length - n) + " more characters)" : s;
}

// A time as "HH:MM:SS.mmm" (or a full ISO date): from milliseconds since
// the epoch or an ISO string; anything else is shown as it is.
function timeOf(v, full) {
  var d = null;
  if (typeof v === "number") d = new Date(v);
  else if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)) d = new Date(v);
  if (d && !isNaN(d.getTime())) {
    var iso = d.toISOString();
    return full ? iso : iso.slice(11, 23);
  }
  return clip(v, 40);
}

// el("td", {className: "x"}, "text", childNode...): anything but a DOM
// node becomes a text node.
function el(tag, props) {
  var e = document.createElement(tag);
  if (props) {
    for (var k in props) {
      if (k === "dataset") { for (var d in props.dataset) e.dataset[d] = txt(props.dataset[d]); }
      else e[k] = props[k];
    }
  }
  for (var i = 2; i < arguments.length; i++) {
    var c = arguments[i];
    if (c === null || c === undefined) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(txt(c)));
  }
  return e;
}

function noteUnrendered(err) {
  unrendered++;
  setText("unrendered", unrendered + " event(s) could not be shown (" + txt(err && err.message) + ")", "error");
}

function setText(id, text, cls) {
  var e = $(id);
  e.textContent = text;
  if (cls !== undefined) e.className = cls;
}

// ---- API ---------------------------------------------------------------------

function api(method, path, body) {
  var opts = { method: method, headers: { "Authorization": "Bearer " + token } };
  // Every change says JSON, body or not (with hub.auth none the hub
  // refuses state changes that do not: see docs/config.md).
  if (method !== "GET") opts.headers["Content-Type"] = "application/json";
  if (body !== undefined) opts.body = JSON.stringify(body);
  return fetch(path, opts).then(function (r) {
    if (r.status === 401) { showLogin("The hub did not accept this token."); throw new Error("unauthorized"); }
    if (r.status === 204) return { status: 204, body: null };
    return r.text().then(function (t) {
      var v = null;
      try { v = t ? JSON.parse(t) : null; } catch (e) { v = { error: t }; }
      if (!r.ok) {
        var err = new Error((v && v.error) || ("HTTP " + r.status));
        err.status = r.status; err.body = v;
        throw err;
      }
      return { status: r.status, body: v };
    });
  });
}

// A server-sent-events stream read with fetch (so the token travels in a
// header, not in the URL). onEvent(name, data) per event; an event that
// throws is counted and skipped. After a reconnect the backlog repeats
// events already shown: those at or below the last `id:` seen are skipped.
// A 401/403 ends the stream (onDenied), it is not retried.
function stream(path, onEvent, onDenied) {
  var ctrl = new AbortController();
  var closed = false;
  var lastId = -1;
  function open() {
    fetch(path, { headers: { "Authorization": "Bearer " + token }, signal: ctrl.signal }).then(function (r) {
      if (r.status === 401 || r.status === 403) {
        closed = true;
        if (onDenied) onDenied(r.status);
        return;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      setText("conn", "live", "ok");
      var reader = r.body.getReader();
      var dec = new TextDecoder();
      var buf = "";
      function pump() {
        return reader.read().then(function (res) {
          if (res.done) throw new Error("stream ended");
          buf += dec.decode(res.value, { stream: true });
          var i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            var frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            var name = "message", data = "", id = null;
            frame.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) name = line.slice(7);
              else if (line.indexOf("data: ") === 0) data += line.slice(6);
              else if (line.indexOf("id: ") === 0) id = Number(line.slice(4));
            });
            if (id !== null && !isNaN(id)) {
              if (id <= lastId) continue;
              lastId = id;
            }
            if (data) {
              try { onEvent(name, JSON.parse(data)); } catch (e) { noteUnrendered(e); }
            }
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      if (closed) return;
      setText("conn", "reconnecting…", "muted");
      setTimeout(function () { if (!closed) open(); }, 2000);
    });
  }
  open();
  return { close: function () { closed = true; ctrl.abort(); } };
}

// ---- login ---------------------------------------------------------------------

function showLogin(msg) {
  $("login").hidden = false;
  setText("login-error", msg || "");
}

function start() {
  $("login").hidden = true;
  api("GET", "/api/examples").then(function (r) {
    examples = r.body.examples;
    var sel = $("examples");
    sel.replaceChildren(el("option", { value: "" }, "Examples…"));
    examples.forEach(function (x, i) { sel.appendChild(el("option", { value: String(i) }, x.name)); });
    startItems();
    show(view);
  }).catch(function () {});
}

// ---- items -----------------------------------------------------------------------

function obj(v) { return isObj(v) ? v : {}; }

function host(it) {
  var h = obj(obj(it.request).headers);
  for (var k in h) if (k.toLowerCase() === "host" || k === ":authority") return clip(h[k], CELL_MAX);
  var dst = obj(it.dst);
  return clip(dst.name || dst.ip, CELL_MAX);
}

function gist(it) {
  var req = obj(it.request), resp = obj(it.response);
  var p = obj(it.protocol);
  if (p.name === "dns") {
    var q = obj(Array.isArray(req.questions) ? req.questions[0] : null);
    return { method: clip(q.type, CELL_MAX), status: clip(resp.code, CELL_MAX), path: clip(q.name, CELL_MAX) };
  }
  return {
    method: clip(req.method || req.command || req.apiKeyName, CELL_MAX),
    status: clip(resp.status, CELL_MAX),
    path: clip(req.path || req.url || req.query, CELL_MAX)
  };
}

function itemRow(it) {
  var g = gist(it);
  var id = txt(it.id);
  var cls = [];
  if (g.status.charAt(0) === "5") cls.push("s5");
  if (g.status.charAt(0) === "4") cls.push("s4");
  if (it.failed === true) cls.push("failed");
  if (it.passed === true) cls.push("passed");
  if (id === selectedId) cls.push("selected");
  var ep = function (e) { e = obj(e); return e.name || e.ip ? clip(e.name || e.ip, CELL_MAX) + ":" + clip(e.port, 8) : ""; };
  var tr = el("tr", { className: cls.join(" "), dataset: { id: id } },
    el("td", null, timeOf(it.startTime !== undefined ? it.startTime : it.timestamp)),
    el("td", null, clip(obj(it.protocol).abbr || obj(it.protocol).name, 40)),
    el("td", null, g.method),
    el("td", { className: "status" }, g.status),
    el("td", null, host(it)),
    el("td", { title: g.path }, g.path),
    el("td", null, typeof it.elapsedTime === "number" ? (it.elapsedTime / 1000).toFixed(1) : clip(it.elapsedTime, 20)),
    el("td", null, ep(it.src) + " → " + ep(it.dst)));
  tr.addEventListener("click", function () { selectItem(id); });
  return tr;
}

function addItem(it) {
  if (!isObj(it)) throw new Error("an item that is not an object");
  var row = itemRow(it);
  items.push(it);
  if (items.length > MAX_ROWS) items.shift();
  if (paused) return;
  var body = $("items-body");
  body.insertBefore(row, body.firstChild);
  while (body.childNodes.length > MAX_ROWS) body.removeChild(body.lastChild);
  setText("items-count", items.length + " items");
}

function startItems() {
  if (itemsStream) itemsStream.close();
  items = [];
  $("items-body").replaceChildren();
  setText("filter-error", "");
  var f = $("filter").value.trim();
  var q = "?backlog=200" + (f ? "&filter=" + encodeURIComponent(f) : "");
  // Check the filter first: a stream cannot carry a 400's message.
  api("GET", "/api/items" + q.replace("backlog", "limit")).then(function () {
    itemsStream = stream("/api/items/stream" + q, function (name, v) { if (name === "item") addItem(v); });
  }).catch(function (e) { setText("filter-error", e.message); });
}

function kvTable(o) {
  if (o !== null && o !== undefined && !isObj(o)) return el("pre", null, clip(o, TEXT_MAX));
  var t = el("table");
  var keys = o ? Object.keys(o) : [];
  if (!keys.length) return el("p", { className: "muted" }, "none");
  keys.forEach(function (k) {
    t.appendChild(el("tr", null, el("td", null, clip(k, CELL_MAX)), el("td", null, clip(o[k], TEXT_MAX))));
  });
  return t;
}

function endpoint(e) {
  if (!isObj(e)) return txt(e);
  return txt(e.ip) + ":" + txt(e.port) + " " + txt(e.name);
}

function renderDetail(it) {
  var d = $("detail");
  if (!isObj(it)) { d.replaceChildren(el("pre", null, clip(it, TEXT_MAX))); return; }
  var req = obj(it.request), resp = it.response;
  var g = gist(it);
  var err = it.error;
  var parts = [
    el("h3", null, clip(obj(it.protocol).abbr, 40) + " " + g.method + " " + g.path),
    kvTable({ id: it.id, time: timeOf(it.startTime, true), "elapsed ms": typeof it.elapsedTime === "number" ? it.elapsedTime / 1000 : txt(it.elapsedTime), src: endpoint(it.src),
      dst: endpoint(it.dst), node: obj(it.node).name, size: it.size,
      error: isObj(err) ? txt(err.type) + ": " + txt(err.msg) : txt(err) }),
    el("h3", null, "Request"),
    kvTable(req.url !== undefined ? { url: req.url, method: req.method, httpVersion: req.httpVersion } : null),
    el("h3", null, "Request headers"), kvTable(req.headers)
  ];
  var post = obj(req.postData);
  if (post.text) parts.push(el("h3", null, "Request body"), el("pre", null, clip(post.text, TEXT_MAX)));
  parts.push(el("h3", null, "Response"));
  if (isObj(resp)) {
    parts.push(kvTable({ status: resp.status, statusText: resp.statusText }), el("h3", null, "Response headers"), kvTable(resp.headers));
    var content = obj(resp.content);
    if (content.text) parts.push(el("h3", null, "Response body"), el("pre", null, clip(content.text, TEXT_MAX)));
  } else if (resp !== undefined && resp !== null) {
    parts.push(kvTable(resp));
  } else {
    parts.push(el("p", { className: "muted" }, "no response"));
  }
  parts.push(el("h3", null, "JSON"), el("pre", { id: "detail-json" }, clip(JSON.stringify(it, null, 2), 4 * TEXT_MAX)));
  d.replaceChildren.apply(d, parts);
}

function selectItem(id) {
  selectedId = id;
  Array.prototype.forEach.call($("items-body").childNodes, function (tr) { tr.classList.toggle("selected", tr.dataset.id === id); });
  // Ask the hub: the item as it holds it now (the answer onItemQueried shapes).
  api("GET", "/api/items/" + encodeURIComponent(id)).then(function (r) { renderDetail(r.body); }).catch(function (e) {
    $("detail").replaceChildren(el("p", { className: "error" }, e.message));
  });
}

// ---- scripting -------------------------------------------------------------------------

function loadAgents() {
  api("GET", "/api/agents").then(function (r) {
    var ul = $("agent-list");
    ul.replaceChildren();
    r.body.agents.forEach(function (a) {
      var li = el("li", { className: current && current.name === a.name ? "selected" : "", dataset: { name: a.name } },
        el("span", null, a.name), el("span", { className: "badge" + (a.active ? " on" : "") }, a.active ? "active" : "inactive"));
      li.addEventListener("click", function () { openAgent(a.name); });
      ul.appendChild(li);
    });
  }).catch(function () {});
  api("GET", "/api/env").then(function (r) {
    var ul = $("env-list");
    ul.replaceChildren();
    r.body.names.forEach(function (n) {
      var del = el("button", { type: "button" }, "remove");
      del.addEventListener("click", function () { api("DELETE", "/api/env/" + encodeURIComponent(n)).then(loadAgents, status); });
      ul.appendChild(el("li", null, el("span", null, n + " = ••••"), del));
    });
  }).catch(function () {});
}

function status(e) {
  if (!e) { setText("status", "", "muted"); return; }
  setText("status", typeof e === "string" ? e : e.message, typeof e === "string" ? "muted" : "error");
}

function setCurrent(a) {
  current = a;
  $("toggle-active").textContent = a && a.active ? "Deactivate" : "Activate";
  $("toggle-active").disabled = !a;
  $("delete-agent").disabled = !a;
}

function openAgent(name) {
  api("GET", "/api/agents/" + encodeURIComponent(name)).then(function (r) {
    $("agent-name").value = r.body.name;
    $("editor").value = r.body.source;
    setCurrent({ name: r.body.name, active: r.body.active });
    status(r.body.name + (r.body.active ? " (active)" : " (inactive)"));
    loadAgents();
  }).catch(status);
}

function save() {
  var name = $("agent-name").value.trim();
  if (!name) { status(new Error("name the agent first")); return; }
  status("saving…");
  api("PUT", "/api/agents/" + encodeURIComponent(name), { source: $("editor").value }).then(function (r) {
    setCurrent({ name: r.body.name, active: r.body.active });
    var w = r.body.warnings.length ? " — " + r.body.warnings.length + " ES5 warning(s), first at line " + r.body.warnings[0].line : "";
    status("saved " + r.body.name + (r.body.active ? " (active)" : " (inactive)") + w);
    loadAgents();
  }).catch(function (e) {
    status(e);
    if (e.body && e.body.line) {
      var lines = $("editor").value.split("\n"), pos = 0;
      for (var i = 0; i < e.body.line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
      $("editor").focus();
      $("editor").setSelectionRange(pos, pos + ((lines[e.body.line - 1] || "").length));
    }
  });
}

// ---- console, jobs, workers ---------------------------------------------------------

function addConsoleLine(l) {
  var pre = $("console");
  l = obj(l);
  if (l.level === "clear") { pre.replaceChildren(); return; }
  pre.appendChild(el("div", { className: l.level === "error" ? "err" : "" },
    el("span", { className: "meta" }, timeOf(l.ts) + " [" + clip(l.node, 80) + " " + clip(l.runtime, 20) + " " + clip(l.agent, 80) + "] "),
    clip(l.text, TEXT_MAX)));
  while (pre.childNodes.length > 2000) pre.removeChild(pre.firstChild);
  pre.scrollTop = pre.scrollHeight;
}

function loadJobs() {
  api("GET", "/api/jobs").then(function (r) {
    var body = $("jobs-body");
    body.replaceChildren();
    r.body.jobs.forEach(function (j) {
      var run = el("button", { type: "button" }, "run");
      var rm = el("button", { type: "button" }, "remove");
      var q = "?worker=" + encodeURIComponent(j.worker);
      run.addEventListener("click", function () { api("POST", "/api/jobs/" + encodeURIComponent(j.tag) + "/run" + q).then(loadJobs); });
      rm.addEventListener("click", function () { api("DELETE", "/api/jobs/" + encodeURIComponent(j.tag) + q).then(loadJobs); });
      body.appendChild(el("tr", null, el("td", null, j.worker), el("td", null, j.tag), el("td", null, j.cron), el("td", null, j.agent),
        el("td", null, j.runs), el("td", null, j.limit || "∞"), el("td", null, j.nextRun ? timeOf(j.nextRun, true) : ""),
        el("td", null, run, rm)));
    });
    if (!r.body.jobs.length) body.appendChild(el("tr", null, el("td", { colSpan: 8, className: "muted" }, "no jobs reported by workers")));
  }).catch(function () {});
}

function loadWorkers() {
  api("GET", "/api/workers").then(function (r) {
    var body = $("workers-body");
    body.replaceChildren();
    r.body.workers.forEach(function (w) {
      body.appendChild(el("tr", null, el("td", null, w.name), el("td", null, w.online ? "online" : "offline"),
        el("td", null, timeOf(w.lastSeen, true)), el("td", null, w.version), el("td", null, w.jobs),
        el("td", null, el("pre", null, clip(w.stats, TEXT_MAX)))));
    });
    if (!r.body.workers.length) body.appendChild(el("tr", null, el("td", { colSpan: 6, className: "muted" }, "no worker has reported")));
  }).catch(function () {});
}

// ---- views ------------------------------------------------------------------------------

var refresh = null;

function show(v) {
  view = v;
  ["items", "scripting", "console", "jobs", "workers"].forEach(function (n) {
    $("view-" + n).hidden = n !== v;
    $("tab-" + n).classList.toggle("active", n === v);
  });
  if (refresh) { clearInterval(refresh); refresh = null; }
  if (v === "scripting") loadAgents();
  if (v === "console" && !consoleStream) {
    consoleStream = stream("/api/console/stream?backlog=500", function (name, l) { if (name === "console") addConsoleLine(l); },
      function () {
        // Agents' console lines may hold secrets in forms no mask knows:
        // the hub shows them to admin tokens only.
        $("console").replaceChildren(el("div", { className: "muted" }, "Console lines are shown to admin tokens only."));
      });
  }
  if (v === "jobs") { loadJobs(); refresh = setInterval(loadJobs, 5000); }
  if (v === "workers") { loadWorkers(); refresh = setInterval(loadWorkers, 5000); }
}

document.addEventListener("DOMContentLoaded", function () {
  Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (b) {
    b.addEventListener("click", function () { show(b.dataset.view); });
  });
  $("filter-form").addEventListener("submit", function (e) { e.preventDefault(); startItems(); });
  $("pause").addEventListener("click", function () {
    paused = !paused;
    $("pause").textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      var body = $("items-body");
      body.replaceChildren();
      for (var i = items.length - 1; i >= 0; i--) body.appendChild(itemRow(items[i]));
    }
  });
  $("examples").addEventListener("change", function () {
    var x = examples[Number(this.value)];
    if (!x) return;
    $("editor").value = x.source;
    $("agent-name").value = x.name;
    setCurrent(null);
    status("example " + x.name + " loaded: Save to store it");
    this.value = "";
  });
  $("new-agent").addEventListener("click", function () {
    $("editor").value = "function onItemCaptured(data) {\n  console.log(data.request && data.request.url);\n}\n";
    $("agent-name").value = "";
    setCurrent(null);
    status("");
  });
  $("save").addEventListener("click", save);
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && (e.key === "s" || e.key === "S") && view === "scripting") { e.preventDefault(); save(); }
  });
  $("editor").addEventListener("keydown", function (e) {
    if (e.key !== "Tab") return;
    e.preventDefault();
    var t = this, s = t.selectionStart;
    t.value = t.value.slice(0, s) + "  " + t.value.slice(t.selectionEnd);
    t.selectionStart = t.selectionEnd = s + 2;
  });
  $("toggle-active").addEventListener("click", function () {
    if (!current) return;
    api("POST", "/api/agents/" + encodeURIComponent(current.name) + (current.active ? "/deactivate" : "/activate")).then(function (r) {
      setCurrent({ name: r.body.name, active: r.body.active });
      status(r.body.name + (r.body.active ? " activated" : " deactivated"));
      loadAgents();
    }).catch(status);
  });
  $("delete-agent").addEventListener("click", function () {
    if (!current || !window.confirm("Delete agent " + current.name + "?")) return;
    var name = current.name;
    api("DELETE", "/api/agents/" + encodeURIComponent(name)).then(function () {
      setCurrent(null);
      $("editor").value = "";
      $("agent-name").value = "";
      status("deleted " + name);
      loadAgents();
    }).catch(status);
  });
  $("env-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var n = $("env-name").value.trim();
    api("PUT", "/api/env/" + encodeURIComponent(n), { value: $("env-value").value }).then(function () {
      $("env-name").value = ""; $("env-value").value = "";
      loadAgents();
    }).catch(status);
  });
  $("console-clear").addEventListener("click", function () { $("console").replaceChildren(); });
  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("skua-token", token);
    start();
  });
  setCurrent(null);

  // A token in the URL fragment (never sent to the server) is taken once
  // and removed from the address bar.
  var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("skua-token", token);
    history.replaceState(null, "", location.pathname);
  } else {
    token = sessionStorage.getItem("skua-token") || "";
  }
  // With hub.auth none any token works; try the one we have (maybe empty).
  api("GET", "/api/agents").then(start).catch(function (e) { if (e.message !== "unauthorized") showLogin(e.message); });
});
