'use strict';
// device.js plays one device with the Azure IoT device SDK, following the
// JSON plan in argv[2] (see Plan in nodesdk.go), and reports what happens
// as JSON lines on stdout (see Event).
const https = require('https');
const { Client, Message } = require('azure-iot-device');

const plan = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

function transport() {
  switch (plan.transport || 'mqtt') {
    case 'mqtt': return require('azure-iot-device-mqtt').Mqtt;
    case 'mqttws': return require('azure-iot-device-mqtt').MqttWs;
    case 'http': return require('azure-iot-device-http').Http;
  }
  throw new Error('unknown transport ' + plan.transport);
}

function fromSDK(msg) {
  const properties = {};
  for (const p of msg.properties.propertyList) properties[p.key] = p.value;
  return {
    data: msg.data.toString(),
    messageId: msg.messageId, correlationId: msg.correlationId, userId: msg.userId,
    to: msg.to, expiryTimeUtc: msg.expiryTimeUtc,
    contentType: msg.contentType, contentEncoding: msg.contentEncoding,
    properties,
  };
}

function toSDK(m) {
  const msg = new Message(m.data);
  for (const k of ['messageId', 'correlationId', 'userId', 'to', 'contentType', 'contentEncoding']) {
    if (m[k]) msg[k] = m[k];
  }
  for (const [k, v] of Object.entries(m.properties || {})) msg.properties.add(k, v);
  return msg;
}

async function main() {
  const timer = setTimeout(() => { out({ event: 'error', error: 'timeout' }); process.exit(1); }, plan.timeoutMillis || 60000);
  const client = Client.fromConnectionString(plan.connectionString, transport());
  client.on('error', (e) => out({ event: 'error', error: String(e) }));
  client.on('disconnect', () => out({ event: 'disconnect' }));
  // One setOptions call: the MQTT transport replaces its whole option
  // object on each.
  const options = {};
  if (plan.tokenValidSeconds) {
    options.tokenRenewal = {
      tokenValidTimeInSeconds: plan.tokenValidSeconds,
      tokenRenewalMarginInSeconds: plan.tokenMarginSeconds,
    };
  }
  if (plan.webSocketPort) {
    // MqttWs dials port 443 only: the agent sends its connections to
    // 127.0.0.1:webSocketPort while TLS still checks the certificate for
    // the host name of the connection string.
    const agent = new https.Agent();
    const connect = agent.createConnection.bind(agent);
    agent.createConnection = (opts, cb) => connect({ ...opts, host: '127.0.0.1', port: plan.webSocketPort, servername: opts.servername || opts.host }, cb);
    options.mqtt = { webSocketAgent: agent };
  }
  if (Object.keys(options).length > 0) await client.setOptions(options);
  let received = 0;
  let allReceived = () => {};
  const receiving = new Promise((resolve) => { allReceived = resolve; });
  if (plan.receive > 0) {
    client.on('message', (msg) => {
      out({ event: 'message', message: fromSDK(msg) });
      client.complete(msg, () => {});
      if (++received >= plan.receive) allReceived();
    });
  } else {
    allReceived();
  }
  await client.open();
  out({ event: 'connected' });
  for (const [i, m] of (plan.send || []).entries()) {
    await client.sendEvent(toSDK(m));
    out({ event: 'sent', index: i });
  }
  await receiving;
  await client.close();
  clearTimeout(timer);
  out({ event: 'closed' });
}

main().catch((e) => { out({ event: 'error', error: String(e) }); process.exit(1); });
