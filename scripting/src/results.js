// What an I/O helper returns: a Proxy over the helper's Promise (see
// results.rs for why and for the invariants). Evaluated once per runtime;
// `wait(id)` is the runtime's native wait for the completion of request
// `id`, which settles the cell before it returns (or throws).
(function (wait) {
  "use strict";
  var RESULT = Symbol("skua.result");
  var then = Promise.prototype.then;
  var fin = Promise.prototype["finally"];
  var toPrimitive = Symbol.toPrimitive;
  var noop = function () {};
  // Promise → {s: 0 pending | 1 value | 2 error, v, id}. Weak: a result the
  // script dropped goes with its Promise.
  var cells = new WeakMap();

  function isObject(v) {
    return v !== null && (typeof v === "object" || typeof v === "function");
  }

  function value(t) {
    var c = cells.get(t);
    if (c.s === 0) wait(c.id);
    if (c.s === 2) {
      // The script sees the error here: the rejection is handled.
      then.call(t, undefined, noop);
      throw c.v;
    }
    return c.v;
  }

  var handler = {
    get: function (t, k) {
      if (k === "then") return function (a, b) { return then.call(t, a, b); };
      if (k === "catch") return function (b) { return then.call(t, undefined, b); };
      if (k === "finally") return function (f) { return fin.call(t, f); };
      if (k === RESULT) return function () { return value(t); };
      if (k === toPrimitive) {
        return function (hint) {
          var v = value(t);
          if (!isObject(v)) return v;
          return hint === "number" ? Number(v) : String(v);
        };
      }
      if (k === "toJSON") {
        return function () {
          var v = value(t);
          return isObject(v) && typeof v.toJSON === "function" ? v.toJSON() : v;
        };
      }
      var v = value(t);
      if (v === null || v === undefined) return undefined;
      var x = Object(v)[k];
      if (typeof x !== "function") return x;
      return function () { return x.apply(v, arguments); };
    },
    set: function (t, k, x) {
      var v = value(t);
      if (isObject(v)) v[k] = x;
      return true;
    },
    has: function (t, k) {
      if (k === "then" || k === "catch" || k === "finally") return true;
      var v = value(t);
      return v !== null && v !== undefined && k in Object(v);
    },
    deleteProperty: function (t, k) {
      var v = value(t);
      if (isObject(v)) delete v[k];
      return true;
    },
    ownKeys: function (t) {
      var v = value(t);
      return v === null || v === undefined ? [] : Reflect.ownKeys(Object(v));
    },
    getOwnPropertyDescriptor: function (t, k) {
      var v = value(t);
      if (v === null || v === undefined) return undefined;
      var d = Object.getOwnPropertyDescriptor(Object(v), k);
      // The target (the Promise) has no such property: a proxy may only
      // report it as configurable.
      if (d) d.configurable = true;
      return d;
    }
  };

  // The result of request `id` over `promise`; `s`/`v` when it is settled
  // already (an argument error, a full queue).
  function make(promise, id, s, v) {
    cells.set(promise, { s: s, v: v, id: id });
    return new Proxy(promise, handler);
  }

  // Settles the result of `promise` (first settlement wins).
  function settle(promise, s, v) {
    var c = cells.get(promise);
    if (c !== undefined && c.s === 0) {
      c.s = s;
      c.v = v;
    }
  }

  // The plain value of a result (waiting for it), anything else as it is.
  function plain(v) {
    if (!isObject(v)) return v;
    var g = v[RESULT];
    return typeof g === "function" ? g() : v;
  }

  var ownKeys = Reflect.ownKeys;
  var describe = Reflect.getOwnPropertyDescriptor;
  return [
    make,
    settle,
    plain,
    function (p) { return ownKeys(p); },
    function (p, k) { return describe(p, k); }
  ];
})
