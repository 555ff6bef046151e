// SPDX-License-Identifier: Apache-2.0
// Topic aliases both ways: the publisher sets alias 1 and then publishes with an empty topic
// [MQTT-3.3.2-12]; the subscriber allows 3 aliases and receives the second message by alias
// [MQTT-3.3.2-11] (MQTT.js resolves it back to the topic).
import { assert, collect, connect, run, unique } from './lib.mjs';

run(async () => {
  const topic = unique('jsta');
  const sub = await connect({ properties: { topicAliasMaximum: 3 } });
  await sub.subscribeAsync(topic, { qos: 1 });
  const got = collect(sub, 3);
  const pub = await connect();
  const max = pub.connackPacket?.properties?.topicAliasMaximum;
  assert.ok(max >= 1, `broker Topic Alias Maximum ${max}`);
  await pub.publishAsync(topic, 'm1', { qos: 1, properties: { topicAlias: 1 } });
  await pub.publishAsync('', 'm2', { qos: 1, properties: { topicAlias: 1 } });
  await pub.publishAsync(topic, 'm3', { qos: 1 });
  const msgs = await got;
  assert.deepEqual(msgs.map((m) => [m.topic, m.payload]), [[topic, 'm1'], [topic, 'm2'], [topic, 'm3']]);
  const aliases = msgs.map((m) => m.packet.properties?.topicAlias);
  assert.ok(aliases[0] >= 1 && aliases[0] <= 3, `first alias ${aliases[0]}`);
  assert.equal(aliases[1], aliases[0]);
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  return { aliases };
});
