#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mqttctl against running nodes (issue 11, "Admin"): `members` lists every node with its state,
`routes` shows a subscription made on one node (with mosquitto_sub) as a route of that node on
the other, `--json` parses, and a node that cannot be reached is a clear error with exit 1."""

import json
import os
import subprocess
import unittest

from harness_cluster import ClusterNode, free_port, unique, wait_until
from harness_persist import skip_under_mosquitto

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 10.0


def mqttctl(*args, check=True):
    out = subprocess.run([MQTTCTL] + list(args), capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise AssertionError("mqttctl %s: exit %d\n%s" % (args, out.returncode, out.stderr))
    return out


@skip_under_mosquitto("mqttd's cluster and mqttctl")
class Mqttctl(unittest.TestCase):

    def setUp(self):
        if not MQTTCTL or not os.path.exists(MQTTCTL):
            self.skipTest("MQTTCTL_BIN not set (run through ctest)")
        self.nodes = []
        self.subs = []

    def tearDown(self):
        for proc in self.subs:
            proc.kill()
            proc.wait()
        for node in self.nodes:
            node.cleanup()

    def test_members_routes_json_and_unreachable(self):
        prefix = unique("ctl")
        a = ClusterNode(prefix + "-a")
        self.nodes.append(a)
        a.start()
        b = ClusterNode(prefix + "-b", seeds=[a.cluster_address])
        self.nodes.append(b)
        b.start()

        def both_alive():
            out = mqttctl("--server", a.cluster_address, "members").stdout
            rows = [line.split() for line in out.splitlines()[1:]]
            states = {row[0]: row[2] for row in rows}
            return states if states.get(a.name) == "alive" and states.get(b.name) == "alive" \
                else None
        states = wait_until(both_alive, WAIT_S, "both nodes alive in `mqttctl members`")
        self.assertEqual(len(states), 2)

        # A subscription on b is a route of b on a.
        topic = "ctl/%s/+" % prefix
        self.subs.append(subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port), "-t", topic, "-q", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def route_seen():
            out = mqttctl("--server", a.cluster_address, "--json", "routes",
                          "--filter", topic).stdout
            routes = json.loads(out).get("routes", [])
            return routes if routes else None
        routes = wait_until(route_seen, WAIT_S, "b's route in `mqttctl routes` on a")
        self.assertEqual(routes[0]["nodeId"], b.name)
        self.assertEqual(routes[0]["filter"], topic)
        self.assertFalse(routes[0]["persistent"])
        table = mqttctl("--server", a.cluster_address, "routes", "--node", b.name).stdout
        self.assertIn(topic, table)
        self.assertTrue(table.startswith("NODE"))

        # The subscriber goes: so does the route.
        sub = self.subs.pop()
        sub.kill()
        sub.wait()
        wait_until(lambda: not json.loads(mqttctl("--server", a.cluster_address, "--json",
                                                  "routes", "--filter", topic).stdout)
                   .get("routes"), WAIT_S, "the route gone after the subscriber left")

        # A node that is down: exit 1 and a message naming the address.
        port = free_port()
        out = mqttctl("--server", "127.0.0.1:%d" % port, "members", check=False)
        self.assertEqual(out.returncode, 1)
        self.assertIn("127.0.0.1:%d" % port, out.stderr)
        self.assertIn("cannot reach", out.stderr)
        # Usage errors: exit 2.
        self.assertEqual(mqttctl("frobnicate", check=False).returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
