// SPDX-License-Identifier: Apache-2.0
// Two overlapping subscriptions with Subscription Identifiers 7 and 11: one message carrying
// both [MQTT-3.3.4-3], [MQTT-3.3.4-4].
import { assert, collect, connect, run, unique } from './lib.mjs';

run(async () => {
  const base = unique('jssid');
  const sub = await connect();
  await sub.subscribeAsync(`${base}/#`, { qos: 1, properties: { subscriptionIdentifier: 7 } });
  await sub.subscribeAsync(`${base}/+`, { qos: 1, properties: { subscriptionIdentifier: 11 } });
  const got = collect(sub, 1);
  const pub = await connect();
  await pub.publishAsync(`${base}/x`, 'both', { qos: 1 });
  const [m] = await got;
  let ids = m.packet.properties.subscriptionIdentifier;
  ids = Array.isArray(ids) ? ids : [ids];
  assert.deepEqual([...ids].sort((a, b) => a - b), [7, 11]);
  await new Promise((r) => setTimeout(r, 300)); // only one copy: nothing else within 300 ms
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  return { subscriptionIdentifier: ids };
});
