#pragma once
// JavaScript run in every new function context before the function's own
// code: makes Date, Math.random, crypto.getRandomValues, crypto.randomUUID
// and performance.now deterministic (docs/functions.md, "Determinism"),
// removes what observes the garbage collector or earlier calls, and returns
// [the function the host calls before each call to set the clock and seed,
// a fast check that a returned value is plain JSON data, the function that
// freezes everything reachable from globalThis once the function loaded].
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
  // Bytes for crypto.*: the same xorshift stream as Math.random.
  function nextUint32() {
    const t = x ^ (x << 11);
    x = y; y = z; z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) | 0;
    return w >>> 0;
  }
  const integerArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
                         Uint32Array, BigInt64Array, BigUint64Array];
  function getRandomValues(array) {
    if (!integerArrays.some((type) => array instanceof type))
      throw new TypeError('crypto.getRandomValues: expected an integer typed array, got ' +
                          (array === null ? 'null' : typeof array));
    if (array.byteLength > 65536)
      throw new RangeError('crypto.getRandomValues: ' + array.byteLength + ' bytes asked, at most 65536');
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i += 4) {
      const r = nextUint32();
      for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (r >>> (8 * j)) & 0xff;
    }
    return array;
  }
  function randomUUID() {
    const b = getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = '';
    for (let i = 0; i < 16; i++) {
      hex += (b[i] + 0x100).toString(16).slice(1);
      if (i === 3 || i === 5 || i === 7 || i === 9) hex += '-';
    }
    return hex;
  }
  const define = (object, name, value) =>
    Object.defineProperty(object, name, { value, writable: true, configurable: true });
  define(globalThis, 'crypto', { getRandomValues, randomUUID });
  // performance.timeOrigin + performance.now() is Date.now(), as in browsers.
  define(globalThis, 'performance', { timeOrigin: 0, now: function now_() { return now; } });

  // What would let one call observe another, or the garbage collector.
  delete globalThis.SharedArrayBuffer;
  delete globalThis.WeakRef;
  delete globalThis.FinalizationRegistry;
  for (const name of ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9', 'input', '$_', 'lastMatch', '$&',
                      'lastParen', '$+', 'leftContext', '$`', 'rightContext', "$'"]) {
    try { delete RegExp[name]; } catch (e) { /* not configurable: kept */ }
  }
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

  // Freezes every object reachable from globalThis (the built-ins and what
  // the function's top-level code added), so that no call can leave a value
  // there for the next call or key. Assigning a property that a frozen
  // prototype holds (`this.name = ...` in an Error subclass) would then
  // throw: the usual ones become accessors that define the property on the
  // object assigned to. Returns "" or what cannot be frozen (a Map, Set,
  // ArrayBuffer, typed array or Date whose contents calls could change).
  const overridable = {
    Object: ['constructor', 'toString', 'valueOf', 'toLocaleString'],
    Function: ['constructor', 'toString', 'apply', 'call', 'bind'],
    Error: ['constructor', 'name', 'message', 'toString'],
    Array: ['constructor', 'toString'],
    Date: ['constructor', 'toString', 'toJSON', 'valueOf'],
    RegExp: ['constructor', 'toString'],
    Promise: ['constructor'],
  };
  for (const name of ['EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError',
                      'AggregateError'])
    overridable[name] = ['constructor', 'name', 'message'];
  function allowOverride(proto, name) {
    const desc = Object.getOwnPropertyDescriptor(proto, name);
    if (!desc || !('value' in desc) || !desc.configurable) return;
    const value = desc.value;
    Object.defineProperty(proto, name, {
      get() { return value; },
      set(newValue) {
        if (this === proto) throw new TypeError("Cannot assign to read only property '" + name + "' of a built-in");
        Object.defineProperty(this, name, { value: newValue, writable: true, enumerable: true, configurable: true });
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
  // `mutableKind(value)`: the host's brand check, "a Map" and so on, or
  // undefined (in C++: brand checks in JS would throw for every object).
  function freezeGlobals(mutableKind) {
    for (const name of Object.keys(overridable)) {
      const proto = globalThis[name] && globalThis[name].prototype;
      if (proto) for (const property of overridable[name]) allowOverride(proto, property);
    }
    // Breadth first; a value's path is kept as its parent's index and key,
    // and spelled out only for the error.
    const values = [globalThis], parents = [-1], names = ['globalThis'];
    const seen = new Set(values);
    const visit = (value, parent, name) => {
      if ((typeof value === 'object' && value !== null) || typeof value === 'function') {
        if (seen.has(value)) return;
        seen.add(value);
        values.push(value);
        parents.push(parent);
        names.push(name);
      }
    };
    const prototypeOf = {};
    const pathOf = (i) => {
      if (parents[i] < 0) return names[i];
      const name = names[i];
      return pathOf(parents[i]) + (name === prototypeOf ? ' (its prototype)'
                                   : typeof name === 'symbol' ? '[' + String(name) + ']' : '.' + name);
    };
    for (let i = 0; i < values.length; i++) {
      const value = values[i];
      const what = typeof value === 'function' ? undefined : mutableKind(value);
      if (what) return pathOf(i) + ' is ' + what + ', whose contents calls could change';
      freeze(value);
      const keys = Reflect.ownKeys(value);
      for (let k = 0; k < keys.length; k++) {
        const desc = Object.getOwnPropertyDescriptor(value, keys[k]);
        if ('value' in desc) {
          visit(desc.value, i, keys[k]);
        } else {
          visit(desc.get, i, keys[k]);
          visit(desc.set, i, keys[k]);
        }
      }
      visit(Object.getPrototypeOf(value), i, prototypeOf);
    }
    return '';
  }
  return [setCallEnvironment, isPlainJson, freezeGlobals];
})()
)JS";

}  // namespace flowstate::worker
