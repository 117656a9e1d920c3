#pragma once
// JavaScript run in every new function context before the function's own
// code: makes Date and Math.random deterministic (docs/functions.md) and
// returns [the function the host calls before each call to set them, a
// fast check that a returned value is plain JSON data].
namespace flowstate::worker {

inline constexpr const char* prelude_source = R"JS(
(function () {
  'use strict';
  const RealDate = Date;
  let now = 0;
  function FlowDate(...args) {
    if (new.target === undefined) return new RealDate(now).toString();
    return Reflect.construct(RealDate, args.length === 0 ? [now] : args, new.target);
  }
  Object.defineProperty(FlowDate, 'name', { value: 'Date' });
  Object.defineProperty(FlowDate, 'length', { value: 7 });
  FlowDate.prototype = RealDate.prototype;
  Object.setPrototypeOf(FlowDate, RealDate);
  FlowDate.now = function now_() { return now; };
  Object.defineProperty(RealDate.prototype, 'constructor',
                        { value: FlowDate, writable: true, configurable: true });
  Object.defineProperty(globalThis, 'Date', { value: FlowDate, writable: true, configurable: true });

  // xorshift128, seeded per call from the message id.
  let x = 1, y = 0, z = 0, w = 0;
  Math.random = function random() {
    const t = x ^ (x << 11);
    x = y; y = z; z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) | 0;
    return (w >>> 0) / 4294967296;
  };
  delete globalThis.SharedArrayBuffer;
  const freeze = Object.freeze;
  // Sets the clock and the random seed for one call and returns its ctx
  // (an object literal keeps one shape for every call, unlike API Sets).
  function setCallEnvironment(time, a, b, c, d, key, flow, block, revision, messageId) {
    now = time; x = a | 0; y = b | 0; z = c | 0; w = d | 0;
    return freeze({ key, flow, block, revision, messageId, time });
  }

  // True when a value is certainly JSON data: strings, finite numbers,
  // booleans, null, plain objects and arrays, no cycle. False means "look
  // closer": the host's exact checker then names what is wrong, if anything.
  // Runs as compiled JS, far faster than walking through the C++ API.
  const keys = Object.keys, isArray = Array.isArray, getPrototypeOf = Object.getPrototypeOf;
  const ObjectPrototype = Object.prototype, ArrayPrototype = Array.prototype;
  const isFinite_ = Number.isFinite;
  const ancestors = [];
  function plain(value, depth) {
    switch (typeof value) {
      case 'string': case 'boolean': return true;
      case 'number': return isFinite_(value);
      case 'object': break;
      default: return false;
    }
    if (value === null) return true;
    if (depth > 200) return false;
    for (let i = 0; i < ancestors.length; i++) if (ancestors[i] === value) return false;
    const proto = getPrototypeOf(value);
    ancestors.push(value);
    let ok = true;
    if (isArray(value)) {
      if (proto !== ArrayPrototype) ok = false;
      for (let i = 0; ok && i < value.length; i++) ok = plain(value[i], depth + 1);
    } else if (proto === ObjectPrototype || proto === null) {
      const names = keys(value);
      for (let i = 0; ok && i < names.length; i++) {
        const v = value[names[i]];
        ok = v === undefined || plain(v, depth + 1);
      }
    } else {
      ok = false;
    }
    ancestors.pop();
    return ok;
  }
  function isPlainJson(value) {
    ancestors.length = 0;
    return plain(value, 0);
  }
  return [setCallEnvironment, isPlainJson];
})()
)JS";

}  // namespace flowstate::worker
