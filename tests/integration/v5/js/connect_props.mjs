// SPDX-License-Identifier: Apache-2.0
// CONNECT with properties; checks the CONNACK properties the broker advertises.
import { assert, connect, run, unique } from './lib.mjs';

run(async () => {
  const clientId = unique('jsconn');
  const client = await connect({
    clientId,
    keepalive: 60,
    properties: {
      sessionExpiryInterval: 60,
      receiveMaximum: 10,
      maximumPacketSize: 65536,
      topicAliasMaximum: 4,
      requestResponseInformation: true,
      userProperties: { app: 'mqttd-test' },
    },
  });
  const connack = await new Promise((resolve) => {
    if (client.connackPacket) resolve(client.connackPacket);
    else client.once('connect', resolve);
  });
  const p = connack.properties || {};
  assert.equal(connack.reasonCode, 0);
  assert.equal(p.retainAvailable, true);
  assert.equal(p.wildcardSubscriptionAvailable, true);
  assert.equal(p.subscriptionIdentifiersAvailable, true);
  assert.equal(p.sharedSubscriptionAvailable, true);
  assert.equal(p.responseInformation, `response/${clientId}`);
  await client.endAsync();
  return { properties: p };
});
