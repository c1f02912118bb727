// How an agent deals with failures: exceptions in its own code, and I/O
// helpers that reject (dead endpoint, full queue). Neither stops capture
// or the other agents; a hook that keeps throwing is quarantined, so catch
// what you expect.
var failures = 0;

function onItemCaptured(data) {
  try {
    var body = data.request.postData ? JSON.parse(data.request.postData.text) : null;
    if (body && body.userId) console.log("request for user", body.userId);
  } catch (e) {
    // Not JSON: expected for many bodies; nothing to do.
  }
  // `data.response` is `{}` on an item without one: status is undefined.
  if (data.response.status >= 500) {
    vendor.webhook("POST", env.WEBHOOK_URL || "http://127.0.0.1:9/unreachable", JSON.stringify(data))
      .then(function (res) {
        if (res.status >= 300) console.error("webhook answered", res.status);
      })
      .catch(function (err) {
        failures++;
        console.error("webhook failed (" + failures + " so far):", err.message);
      });
  }
}
