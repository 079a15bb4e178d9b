'use strict';
// http_device.js plays one device over the SDK's HTTP transport, following
// the JSON plan in argv[2], and reports what happens as JSON lines on stdout.
//
// Plan: {
//   connectionString: "HostName=localhost;DeviceId=...;SharedAccessKey=...",
//   port: 8443,                 // the SDK dials 443 only: the agent redirects here
//   send: [{data, size, messageId, properties: {k: v}}], // sendEvent, one by one;
//                                                    // size replaces data with size x's
//   batch: [{data, properties}],                     // one sendEventBatch
//   settle: {"<messageId>": ["abandon", "complete"]} // per delivery of that id
// }
// Lines: {event: "sent", index}, {event: "sendError", index, result: the
// SDK's error class, error}, {event: "batch"}, {event: "message", message,
// action}, {event: "settled", action, messageId, result}, {event: "error",
// error}, {event: "closed"}. It exits once every planned settlement is done.
const https = require('https');
const { Client, Message } = require('azure-iot-device');
const { Http } = require('azure-iot-device-http');

const plan = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// The agent sends every connection to 127.0.0.1:plan.port while TLS still
// checks the certificate for the host name of the connection string.
const agent = new https.Agent({ keepAlive: true });
const connect = agent.createConnection.bind(agent);
agent.createConnection = (opts, cb) => connect({ ...opts, host: '127.0.0.1', port: plan.port, servername: opts.servername || opts.host }, cb);

function toSDK(m) {
  const msg = new Message(m.data);
  if (m.messageId) msg.messageId = m.messageId;
  for (const [k, v] of Object.entries(m.properties || {})) msg.properties.add(k, v);
  return msg;
}

function fromSDK(msg) {
  const properties = {};
  for (const p of msg.properties.propertyList) properties[p.key] = p.value;
  return {
    data: msg.data.toString(), messageId: msg.messageId, correlationId: msg.correlationId,
    to: msg.to, expiryTimeUtc: msg.expiryTimeUtc, lockToken: msg.lockToken, properties,
  };
}

async function main() {
  const timer = setTimeout(() => { out({ event: 'error', error: 'timeout' }); process.exit(1); }, plan.timeoutMillis || 60000);
  const client = Client.fromConnectionString(plan.connectionString, Http);
  client.on('error', (e) => out({ event: 'error', error: String(e) }));
  // setOptions on Http calls back only when receivePolicy is given.
  await client.setOptions({ http: { agent, receivePolicy: { interval: 1 } } });
  await client.open();
  for (const [i, m] of (plan.send || []).entries()) {
    if (m.size) m.data = 'x'.repeat(m.size);
    try {
      await client.sendEvent(toSDK(m));
      out({ event: 'sent', index: i });
    } catch (e) {
      out({ event: 'sendError', index: i, result: e.constructor.name, error: String(e) });
    }
  }
  if (plan.batch) {
    await client.sendEventBatch(plan.batch.map(toSDK));
    out({ event: 'batch' });
  }
  const todo = plan.settle || {};
  let left = Object.values(todo).reduce((n, a) => n + a.length, 0);
  if (left > 0) {
    await new Promise((resolve) => {
      client.on('message', async (msg) => {
        const action = (todo[msg.messageId] || []).shift() || 'complete';
        out({ event: 'message', message: fromSDK(msg), action });
        try {
          const res = await client[action](msg);
          out({ event: 'settled', action, messageId: msg.messageId, result: res && res.constructor.name });
        } catch (e) {
          out({ event: 'error', error: String(e) });
        }
        if (--left <= 0) resolve();
      });
    });
  }
  await client.close();
  agent.destroy();
  clearTimeout(timer);
  out({ event: 'closed' });
}

main().catch((e) => { out({ event: 'error', error: String(e) }); process.exit(1); });
