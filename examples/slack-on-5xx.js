// Post every HTTP 5xx to Slack (an incoming webhook), at most one message
// per endpoint per minute so an outage does not flood the channel.
var lastSent = {};

function onItemCaptured(data) {
  // No response: `data.response` is `{}` and its status undefined.
  if (data.protocol.name !== "http" || !(data.response.status >= 500)) return;
  var key = data.dst.ip + ":" + data.dst.port + " " + data.request.path;
  var now = data.timestamp;
  if (lastSent[key] && now - lastSent[key] < 60000) return;
  lastSent[key] = now;
  vendor.slack(
    env.SLACK_WEBHOOK_URL,
    "HTTP " + data.response.status + " on " + (data.dst.name || data.dst.ip),
    data.request.method + " " + data.request.url + " took " + (data.elapsedTime / 1000).toFixed(1) + " ms",
    "#d93f0b"
  ).catch(function (err) {
    console.error("slack:", err.message);
  });
}
