// HTTP status counts per host, written to InfluxDB every 10 seconds.
var counts = {};

function onItemCaptured(data) {
  if (data.protocol.name !== "http" || data.response.status === undefined) return;
  var host = data.request.headers.Host || data.dst.ip;
  var key = host + "|" + data.response.status;
  counts[key] = (counts[key] || 0) + 1;
}

function flush() {
  for (var key in counts) {
    var parts = key.split("|");
    vendor.influxdb(
      env.INFLUXDB_URL, env.INFLUXDB_TOKEN, env.INFLUXDB_ORGANIZATION, env.INFLUXDB_BUCKET,
      "http_status", { count: counts[key] }, { host: parts[0], status: parts[1] }
    );
  }
  counts = {};
}

jobs.schedule("influxdb-status-counts", "*/10 * * * * *", flush);
