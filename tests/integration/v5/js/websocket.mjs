// SPDX-License-Identifier: Apache-2.0
// MQTT.js over ws:// or wss:// (run by ../../14_websocket.py): argv[2] the URL, argv[3] the CA
// file for wss. Subscribes, publishes QoS 0 and 1 to itself, prints one JSON result line; exits
// 1 when a check fails.
import mqtt from 'mqtt';
import fs from 'node:fs';

const [url, caFile] = process.argv.slice(2);
const topic = `js/ws/${Math.random().toString(16).slice(2, 12)}`;
const options = { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10000 };
if (caFile) options.ca = fs.readFileSync(caFile);

const timer = setTimeout(() => {
  console.error('timeout');
  process.exit(1);
}, 20000);

try {
  const client = await mqtt.connectAsync(url, options);
  const got = [];
  const done = new Promise((resolve) => {
    client.on('message', (t, payload, packet) => {
      got.push({ payload: payload.toString(), qos: packet.qos });
      if (got.length === 2) resolve();
    });
  });
  await client.subscribeAsync(topic, { qos: 1 });
  await client.publishAsync(topic, 'zero', { qos: 0 });
  await client.publishAsync(topic, 'one', { qos: 1 });
  await done;
  await client.endAsync();
  clearTimeout(timer);
  const ok = got[0].payload === 'zero' && got[1].payload === 'one' && got[1].qos === 1;
  console.log(JSON.stringify({ ok, got }));
  process.exit(ok ? 0 : 1);
} catch (e) {
  console.error(String(e && e.stack || e));
  process.exit(1);
}
