// SPDX-License-Identifier: Apache-2.0
// Shared helpers for the MQTT.js (protocolVersion 5) scripts run by ../32_mqttjs.py.
// Each script takes the broker port as argv[2], prints one JSON result line and exits 0 when
// its checks pass, 1 (with a message on stderr) when they fail.
import mqtt from 'mqtt';
import assert from 'node:assert/strict';

export { assert };
export const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: node <script>.mjs <port>');
  process.exit(2);
}
export const url = `mqtt://127.0.0.1:${port}`;
export const unique = (p) => `${p}-${Math.random().toString(16).slice(2, 12)}`;

export async function connect(opts = {}) {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 10000,
    clientId: unique('js'),
    ...opts,
  });
  return client;
}

// Resolves with the first `n` messages (topic, payload, packet) arriving at client.
export function collect(client, n, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(
      () => reject(new Error(`only ${got.length} of ${n} messages within ${timeoutMs} ms`)),
      timeoutMs);
    client.on('message', (topic, payload, packet) => {
      got.push({ topic, payload: payload.toString(), packet });
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

export function run(main) {
  const watchdog = setTimeout(() => {
    console.error('timeout');
    process.exit(1);
  }, 60000);
  main().then((result) => {
    console.log(JSON.stringify({ ok: true, ...result }));
    clearTimeout(watchdog);
    process.exit(0);
  }, (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
  });
}
