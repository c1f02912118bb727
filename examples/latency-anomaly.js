// Flags responses whose latency is more than 3 standard deviations above
// the running mean for their endpoint (Welford's online mean/variance).
var stats = {};

function onItemCaptured(data) {
  if (data.protocol.name !== "http" || data.response.status === undefined) return;
  var key = (data.request.headers.Host || data.dst.ip) + " " + data.request.method + " " + data.request.path;
  var s = stats[key] || (stats[key] = { n: 0, mean: 0, m2: 0 });
  var x = data.elapsedTime / 1000; // µs → ms
  if (s.n >= 30) {
    var sd = Math.sqrt(s.m2 / (s.n - 1));
    var z = sd > 0 ? (x - s.mean) / sd : 0;
    if (z > 3) {
      console.log("latency anomaly:", key, x.toFixed(2) + " ms", "z=" + z.toFixed(1),
                  "mean=" + s.mean.toFixed(2) + " ms");
    }
  }
  s.n++;
  var d = x - s.mean;
  s.mean += d / s.n;
  s.m2 += d * (x - s.mean);
}
