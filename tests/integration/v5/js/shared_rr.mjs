// SPDX-License-Identifier: Apache-2.0
// $share/{group}/{filter} with the default round robin: 30 QoS 1 messages to 3 members,
// 10 each, every message exactly once (4.8.2).
import { assert, connect, run, unique } from './lib.mjs';

run(async () => {
  const topic = unique('jsrr');
  const members = await Promise.all([0, 1, 2].map(() => connect()));
  const got = members.map(() => []);
  let total = 0;
  let resolveAll;
  const all = new Promise((r) => { resolveAll = r; });
  members.forEach((m, i) => m.on('message', (t, payload) => {
    got[i].push(payload.toString());
    if (++total === 30) resolveAll();
  }));
  for (const m of members) await m.subscribeAsync(`$share/jsgroup/${topic}`, { qos: 1 });
  const pub = await connect();
  for (let i = 0; i < 30; i++) await pub.publishAsync(topic, String(i), { qos: 1 });
  await Promise.race([all, new Promise((_, rej) => setTimeout(
    () => rej(new Error(`only ${total} of 30`)), 10000))]);
  await new Promise((r) => setTimeout(r, 300)); // no extra copies within 300 ms
  const counts = got.map((g) => g.length);
  assert.deepEqual(counts, [10, 10, 10]);
  assert.deepEqual(got.flat().map(Number).sort((a, b) => a - b), [...Array(30).keys()]);
  await Promise.all([...members, pub].map((c) => c.endAsync()));
  return { counts };
});
