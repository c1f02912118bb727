// Send each health check (GET /healthz, /health, /ready) to a webhook.
var healthPaths = { "/healthz": true, "/health": true, "/ready": true, "/readyz": true };

function onItemCaptured(data) {
  if (data.protocol.name !== "http" || !healthPaths[data.request.path]) return;
  vendor.webhook("POST", env.WEBHOOK_URL, JSON.stringify({
    service: data.request.headers.Host || data.dst.ip,
    status: data.response.status === undefined ? null : data.response.status,
    elapsedMs: data.elapsedTime / 1000,
    at: data.startTime
  }), { "Content-Type": "application/json" });
}
