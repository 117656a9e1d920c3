// A custom source (docs/drivers.md "Custom drivers"): a device gateway that
// sends readings as JSON lines over TCP and keeps each one until it gets
// `ack <id>` back. A reading is acknowledged only once Flowstate has
// committed it, so a crash of either side loses nothing: the gateway sends
// the unacknowledged ones again and the `id` drops the copies.
//
// Configuration (drivers/<name>.yaml):
//   kind: npm:@flowstate-examples/tcp-lines
//   gateway: tcp://10.0.0.5:7000     # the host it may reach
//   key: /device                     # the message key: a JSON pointer into the reading
//   id: [/device, /seq]              # what makes a reading "the same one again"

function pointer(value, p) {
  for (const part of p.split('/').slice(1)) {
    if (value === null || typeof value !== 'object') return undefined;
    value = value[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return value;
}

function target(url) {
  const m = /^tcp:\/\/([^/:]+|\[[^\]]+\]):(\d+)/.exec(url || '');
  if (!m) throw new Error(`gateway: expected tcp://host:port, got ${JSON.stringify(url)}`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

async function session(ctx, { host, port }) {
  const socket = await ctx.connect(host, port);
  socket.setEncoding('utf8');
  let buffered = '';
  await new Promise((resolve) => {
    socket.on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.trim()) continue;
        let reading;
        try {
          reading = JSON.parse(line);
        } catch (e) {
          ctx.log(`not JSON, skipped: ${line.slice(0, 100)}`);
          continue;
        }
        const key = pointer(reading, ctx.config.key || '/device');
        const id = (ctx.config.id || []).map((p) => pointer(reading, p)).join('/');
        ctx.emit(reading, { key, id: id || undefined })
          .then(() => socket.writable && socket.write(`ack ${id}\n`))
          .catch((e) => ctx.log(`not accepted, the gateway sends it again: ${e.message}`));
      }
    });
    socket.on('error', (e) => ctx.log(`gateway: ${e.message}`));
    socket.on('close', resolve);
    ctx.signal.addEventListener('abort', () => socket.destroy());
  });
}

module.exports = {
  async start(ctx) {
    const gateway = target(ctx.config.gateway);
    let delay = 500;
    while (!ctx.signal.aborted) {
      try {
        await session(ctx, gateway);
        delay = 500;
      } catch (e) {
        ctx.log(`gateway ${ctx.config.gateway}: ${e.message}; again in ${delay} ms`);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  },
};
