// The most looked-up DNS names, aggregated across every worker: each
// runtime counts locally and sends its counts to the hub once a minute.
var local = {};
var global = {};

function onItemCaptured(data) {
  if (data.protocol.name !== "dns") return;
  // A response whose query was not captured: its request is `{}`.
  var qs = data.request.questions || data.response.questions || [];
  for (var i = 0; i < qs.length; i++) local[qs[i].name] = (local[qs[i].name] || 0) + 1;
}

function report() {
  hub.action("dns-counts", { node: utils.nodeName(), counts: local });
  local = {};
}

// Runs on the hub.
function onHubAction(action, object) {
  if (action !== "dns-counts") return;
  for (var name in object.counts) global[name] = (global[name] || 0) + object.counts[name];
  var top = Object.keys(global).sort(function (a, b) { return global[b] - global[a]; }).slice(0, 10);
  console.log("top DNS names:", top.map(function (n) { return n + " " + global[n]; }).join(", "));
}

jobs.schedule("dns-report", "0 * * * * *", report);
