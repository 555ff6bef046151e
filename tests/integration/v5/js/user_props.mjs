// SPDX-License-Identifier: Apache-2.0
// User Properties (repeated names, order), Content Type, Response Topic, Correlation Data,
// Payload Format Indicator passed through unchanged [MQTT-3.3.2-4], [MQTT-3.3.2-15..20].
import { assert, collect, connect, run, unique } from './lib.mjs';

run(async () => {
  const topic = unique('jsup');
  const sub = await connect();
  await sub.subscribeAsync(topic, { qos: 1 });
  const got = collect(sub, 1);
  const pub = await connect();
  const properties = {
    payloadFormatIndicator: true,
    contentType: 'application/json',
    responseTopic: `${topic}/reply`,
    correlationData: Buffer.from([0, 1, 2, 255]),
    userProperties: { zeta: '1', alpha: ['a1', 'a2'], mid: 'm' },
  };
  await pub.publishAsync(topic, '{"v":1}', { qos: 1, properties });
  const [m] = await got;
  const p = m.packet.properties;
  assert.equal(m.payload, '{"v":1}');
  assert.equal(p.payloadFormatIndicator, true);
  assert.equal(p.contentType, 'application/json');
  assert.equal(p.responseTopic, `${topic}/reply`);
  assert.deepEqual([...p.correlationData], [0, 1, 2, 255]);
  assert.deepEqual({ ...p.userProperties }, { zeta: '1', alpha: ['a1', 'a2'], mid: 'm' });
  assert.deepEqual(Object.keys(p.userProperties), ['zeta', 'alpha', 'mid']);
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  return { userProperties: p.userProperties };
});
