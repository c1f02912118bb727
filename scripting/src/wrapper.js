// Kubeshark's composite helpers that need no I/O of their own, as the
// global `wrapper` (see local.rs). `kflPcapS3` and `pcapSnapshot` join
// them where KFL and object storage are wired in.
(function () {
  "use strict";

  function pairs(obj) {
    var out = [];
    if (obj === null || typeof obj !== "object") return out;
    var keys = Object.keys(obj);
    for (var i = 0; i < keys.length; i++) {
      var v = obj[keys[i]];
      if (Array.isArray(v)) {
        for (var j = 0; j < v.length; j++) out.push({ name: keys[i], value: String(v[j]) });
      } else {
        out.push({ name: keys[i], value: String(v) });
      }
    }
    return out;
  }

  function num(v) {
    return typeof v === "number" && isFinite(v) ? v : -1;
  }

  function entry(item) {
    if (item === null || typeof item !== "object") {
      throw new TypeError("wrapper.buildHAR: every item must be an object");
    }
    var req = item.request || {}, res = item.response || {};
    var ms = typeof item.elapsedTime === "number" ? item.elapsedTime / 1000 : 0;
    var e = {
      startedDateTime: item.startTime,
      time: ms,
      request: {
        method: req.method || "",
        url: req.url || req.path || "",
        httpVersion: req.httpVersion || "",
        cookies: pairs(req.cookies),
        headers: pairs(req.headers),
        queryString: pairs(req.queryString),
        headersSize: num(req.headersSize),
        bodySize: num(req.bodySize)
      },
      response: {
        status: typeof res.status === "number" ? res.status : 0,
        statusText: res.statusText || "",
        httpVersion: res.httpVersion || "",
        cookies: pairs(res.cookies),
        headers: pairs(res.headers),
        content: {
          size: res.content && typeof res.content.size === "number" ? res.content.size : 0,
          mimeType: (res.content && res.content.mimeType) || "",
          text: res.content && res.content.text
        },
        redirectURL: res.redirectURL || "",
        headersSize: num(res.headersSize),
        bodySize: num(res.bodySize)
      },
      cache: {},
      timings: { send: 0, wait: ms, receive: 0 },
      serverIPAddress: item.dst && item.dst.ip
    };
    if (req.postData) {
      e.request.postData = { mimeType: req.postData.mimeType || "", text: req.postData.text || "" };
    }
    return e;
  }

  return {
    // A HAR 1.2 log (JSON text) of HTTP items, as Kubeshark's wrapper builds
    // for vendor.kinesis.put and friends.
    buildHAR: function (items) {
      if (!Array.isArray(items)) throw new TypeError("wrapper.buildHAR: items must be an array");
      var entries = [];
      for (var i = 0; i < items.length; i++) entries.push(entry(items[i]));
      return JSON.stringify({
        log: { version: "1.2", creator: { name: "skua", version: "1" }, entries: entries }
      });
    },
    // A new map with the keys of both; numbers under one key are added,
    // otherwise the second map's value wins.
    joinMaps: function (a, b) {
      var out = {}, k;
      var check = function (m, which) {
        if (m !== undefined && m !== null && typeof m !== "object") {
          throw new TypeError("wrapper.joinMaps: the " + which + " argument must be an object");
        }
      };
      check(a, "first");
      check(b, "second");
      for (k in a || {}) if (Object.prototype.hasOwnProperty.call(a, k)) out[k] = a[k];
      for (k in b || {}) {
        if (!Object.prototype.hasOwnProperty.call(b, k)) continue;
        if (typeof out[k] === "number" && typeof b[k] === "number") out[k] += b[k];
        else out[k] = b[k];
      }
      return out;
    }
  };
})()
