#pragma once
// JavaScript run in every new function context before the function's own
// code: makes Date and Math.random deterministic (ARCHITECTURE §1.2) and
// returns the function the host calls before each call to set them.
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
  return function setCallEnvironment(time, a, b, c, d, key, flow, block, revision, messageId) {
    now = time; x = a | 0; y = b | 0; z = c | 0; w = d | 0;
    return freeze({ key, flow, block, revision, messageId, time });
  };
})()
)JS";

}  // namespace flowstate::worker
