#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT.js (npm package mqtt, protocolVersion 5) against the broker: connect with properties,
subscription identifiers, user properties pass-through, topic aliases, shared subscription
round robin. The Node.js scripts live in js/ (npm ci there first; ctest's fixture test
integration.v5.npm_ci does it). Skips when node or js/node_modules is missing."""

import json
import os
import shutil
import subprocess
import unittest

from harness5 import *  # noqa: F401,F403
from harness5 import BrokerTestCase, main

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
NODE = shutil.which("node")
HAVE_MODULES = os.path.isdir(os.path.join(JS, "node_modules", "mqtt"))
SKIP_REASON = ("MQTT.js tests skipped: %s" % (
    "node not found on PATH" if not NODE else
    "tests/integration/v5/js/node_modules missing (run: npm ci --prefix tests/integration/v5/js)"))


@unittest.skipUnless(NODE and HAVE_MODULES, SKIP_REASON)
class MqttJs(BrokerTestCase):
    BROKER_ARGS = ("--topic-alias-maximum", "8", "--receive-maximum", "50")

    def node(self, script):
        r = subprocess.run([NODE, os.path.join(JS, script + ".mjs"), str(self.broker.port)],
                           cwd=JS, capture_output=True, text=True, timeout=90)
        if r.returncode != 0:
            self.fail("%s.mjs exited %d\nstdout: %s\nstderr: %s"
                      % (script, r.returncode, r.stdout, r.stderr))
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        self.assertTrue(lines, r.stdout)
        result = json.loads(lines[-1])
        self.assertTrue(result.get("ok"), result)
        return result

    def test_connect_with_properties(self):
        """MQTT.js CONNECT with Session Expiry, Receive Maximum, Maximum Packet Size, Topic
        Alias Maximum, Request Response Information, User Property; CONNACK as configured
        (3.2.2.3), Response Information [MQTT-3.1.2-28]."""
        p = self.node("connect_props")["properties"]
        self.assertEqual(p["receiveMaximum"], 50)
        self.assertEqual(p["topicAliasMaximum"], 8)
        self.assertEqual(p["maximumPacketSize"], 16 * 1024 * 1024)

    def test_subscription_identifiers(self):
        """Overlapping subscriptions with ids 7 and 11: one message with both
        [MQTT-3.3.4-3], [MQTT-3.3.4-4]."""
        self.assertEqual(sorted(self.node("sub_ids")["subscriptionIdentifier"]), [7, 11])

    def test_user_properties_passthrough(self):
        """User Properties (repeated name, order), Content Type, Response Topic, Correlation
        Data, Payload Format Indicator unchanged [MQTT-3.3.2-17], [MQTT-3.3.2-18]."""
        self.node("user_props")

    def test_topic_alias_both_ways(self):
        """Inbound alias set then used with an empty topic [MQTT-3.3.2-12]; outbound aliases
        to a client allowing 3 [MQTT-3.3.2-11]."""
        self.assertEqual(len(set(self.node("topic_alias")["aliases"])), 1)

    def test_shared_subscription_round_robin(self):
        """$share/jsgroup/T with 3 MQTT.js members: 30 messages, 10 each (4.8.2)."""
        self.assertEqual(self.node("shared_rr")["counts"], [10, 10, 10])


if __name__ == "__main__":
    main()
