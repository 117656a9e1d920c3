// The driver host (docs/drivers.md "Custom drivers"): runs one custom
// driver's bundled package and speaks the driver protocol with the node
// over fd 3 (one JSON object per line). Sockets the node connects for the
// driver arrive on fd 4. Compiled into flowstate-driver-js.
'use strict';
const net = require('net');
const { recvFd } = process._linkedBinding('flowstate_driver');

const control = new net.Socket({ fd: 3, readable: true, writable: true });
const send = (m) => control.write(JSON.stringify(m) + '\n');
const fatal = (e) => {
  send({ type: 'fatal', error: String((e && e.stack) || e) });
  control.end(() => process.exit(1));
  setTimeout(() => process.exit(1), 1000).unref();
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

let driver = null;
let ctx = null;
let nextRef = 1;
const waiting = new Map();  // ref -> {resolve, reject}
const stopping = new AbortController();
// Connections accepted on the `listen:` addresses: to ctx.onConnection's
// handler, kept (up to 64) until the driver sets one.
let connectionHandler = null;
const unhandled = [];

function handOver(handler, socket, info) {
  Promise.resolve().then(() => handler(socket, info)).catch((e) => {
    send({ type: 'log', level: 'error', message: `connection from ${info.peer}: ${String((e && e.stack) || e)}` });
    socket.destroy();
  });
}

function format(args) {
  return args.map((a) => (typeof a === 'string' ? a : require('util').inspect(a))).join(' ');
}
// console.* of the driver goes to the node's log through the protocol.
for (const [name, level] of [['log', 'info'], ['info', 'info'], ['warn', 'warn'], ['error', 'error'], ['debug', 'debug']])
  console[name] = (...args) => send({ type: 'log', level, message: format(args) });

function request(message) {
  const ref = nextRef++;
  return new Promise((resolve, reject) => {
    waiting.set(ref, { resolve, reject });
    send({ ...message, ref });
  });
}

function makeContext(start) {
  return {
    name: start.name,
    role: start.role,
    config: start.config,
    signal: stopping.signal,
    log: (...args) => send({ type: 'log', level: 'info', message: format(args) }),
    // A source's message: resolves once it is committed (then acknowledge it
    // to your device or broker), rejects when the node refused it.
    emit(payload, options = {}) {
      const m = { type: 'emit', payload };
      if (options.key != null) m.key = String(options.key);  // null and undefined: none
      if (options.id != null) m.id = String(options.id);
      return request(m);
    },
    // handler(socket, {listener, peer}) for each connection the node accepts
    // on the configuration's `listen:` addresses (a net.Socket); an error
    // it throws (or rejects with) is logged and closes that connection.
    onConnection(handler) {
      if (typeof handler !== 'function') throw new TypeError('onConnection: expected a function');
      connectionHandler = handler;
      for (const [socket, info] of unhandled.splice(0)) handOver(handler, socket, info);
    },
    // A TCP connection to a host the configuration names, made by the node.
    async connect(host, port) {
      const fd = await request({ type: 'connect', host: String(host), port: Number(port) });
      return new net.Socket({ fd, readable: true, writable: true });
    },
    retry(message, options = {}) {
      const e = new Error(message);
      if (options.afterMs !== undefined) e.retryAfterMs = Number(options.afterMs);
      return e;
    },
    permanent(message) {
      const e = new Error(message);
      e.permanent = true;
      return e;
    },
  };
}

async function onStart(m) {
  const mod = { exports: {} };
  new Function('module', 'exports', 'require', '__filename', '__dirname', m.code)(mod, mod.exports, require,
                                                                                     m.package, '/');
  driver = mod.exports && mod.exports.default ? mod.exports.default : mod.exports;
  ctx = makeContext(m);
  if (m.role === 'sink' && typeof driver.deliver !== 'function')
    throw new Error(`${m.package} is used as a sink but exports no deliver(delivery, ctx)`);
  if (m.role === 'source' && typeof driver.start !== 'function')
    throw new Error(`${m.package} is used as a source but exports no start(ctx)`);
  send({ type: 'ready' });
  if (typeof driver.start === 'function') await driver.start(ctx);
}

async function onDeliver(m) {
  try {
    const result = await driver.deliver({ id: m.id, key: m.key, payload: m.payload, timeMs: m.timeMs,
                                          attempt: m.attempt }, ctx);
    const reply = { type: 'delivered', ref: m.ref };
    if (result !== undefined) reply.result = result;
    send(reply);
  } catch (e) {
    const reply = { type: 'failed', ref: m.ref, error: String((e && e.message) || e), permanent: !!(e && e.permanent) };
    if (e && e.retryAfterMs !== undefined) reply.retryAfterMs = e.retryAfterMs;
    send(reply);
  }
}

function onMessage(m) {
  switch (m.type) {
    case 'start': return onStart(m);
    case 'deliver': return onDeliver(m);
    case 'ack': case 'connected': case 'connect_failed': {
      const w = waiting.get(m.ref);
      if (!w) return;
      waiting.delete(m.ref);
      if (m.type === 'ack' && m.ok) {
        w.resolve();
      } else if (m.type === 'connected') {
        // The socket was sent on fd 4 just before this reply, in order.
        const [fd, tag] = recvFd(4);
        if (fd < 0 || tag !== String(m.ref)) w.reject(new Error(`connect: the socket did not arrive (${tag})`));
        else w.resolve(fd);
      } else {
        const e = new Error(m.error || 'refused');
        if (m.denied) e.code = 'EACCES';  // the node's rules, not the network: do not retry
        w.reject(e);
      }
      return;
    }
    case 'accepted': {
      // The socket was sent on fd 4 just before this message, in order.
      const [fd, tag] = recvFd(4);
      if (fd < 0 || tag !== `accept-${m.ref}`) {
        send({ type: 'log', level: 'error', message: `an accepted connection did not arrive (${tag})` });
        return;
      }
      const socket = new net.Socket({ fd, readable: true, writable: true });
      const info = { listener: m.listener, peer: m.peer };
      if (connectionHandler) handOver(connectionHandler, socket, info);
      else if (unhandled.length < 64) unhandled.push([socket, info]);
      else socket.destroy();
      return;
    }
    case 'stop':
      stopping.abort();
      return Promise.resolve(driver && driver.stop && driver.stop(ctx)).finally(() => process.exit(0));
  }
}

let buffered = '';
control.setEncoding('utf8');
control.on('data', (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (line) Promise.resolve().then(() => onMessage(JSON.parse(line))).catch(fatal);
  }
});
control.on('end', () => process.exit(0));
