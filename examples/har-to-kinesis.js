// Every HTTP item as a HAR entry on a Kinesis stream.
function harEntry(data) {
  var req = data.request, res = data.response;
  function pairs(obj) {
    var out = [];
    for (var k in obj) out.push({ name: k, value: obj[k] });
    return out;
  }
  return {
    startedDateTime: data.startTime,
    time: data.elapsedTime / 1000, // HAR wants ms; elapsedTime is µs
    request: {
      method: req.method, url: req.url, httpVersion: req.httpVersion,
      headers: pairs(req.headers), queryString: pairs(req.queryString),
      headersSize: req.headersSize, bodySize: req.bodySize
    },
    response: {
      status: res.status || 0, statusText: res.statusText || "", httpVersion: res.httpVersion || "",
      headers: pairs(res.headers || {}), content: res.content || { size: 0 },
      headersSize: res.headersSize || 0, bodySize: res.bodySize || 0
    },
    serverIPAddress: data.dst.ip
  };
}

function onItemCaptured(data) {
  if (data.protocol.name !== "http") return;
  vendor.kinesis.put(env.KINESIS_STREAM, JSON.stringify(harEntry(data)), env.AWS_REGION || "us-east-1");
}
