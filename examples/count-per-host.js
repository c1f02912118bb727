// HTTP requests per Host header, printed every 10 seconds.
var counts = {};

function onItemCaptured(data) {
  if (data.protocol.name !== "http") return;
  var host = data.request.headers.Host || data.request.headers.host || data.dst.ip;
  counts[host] = (counts[host] || 0) + 1;
}

jobs.schedule("print-counts", "*/10 * * * * *", function () {
  console.log(counts);
});
