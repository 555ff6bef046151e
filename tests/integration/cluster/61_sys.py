#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""$SYS topics in a cluster (node/sys, docs/sys-topics.md): each node publishes its own, to its
own subscribers only. A $SYS/# subscriber on node b gets b's $SYS/cluster/node and never a's,
although a has the same subscription route from b (a forwards ordinary messages to it); and
$SYS/cluster/nodes/alive says 2 on both."""

import subprocess
import unittest

from harness_cluster import start_chain, unique, wait_until
from harness_persist import skip_under_mosquitto

WAIT_S = 20.0


def sys_values(node):
    out = subprocess.run(["mosquitto_sub", "-h", node.host, "-p", str(node.port), "-t",
                          "$SYS/cluster/#", "-v", "--retained-only", "-W", "5"],
                         capture_output=True, text=True, timeout=30)
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


@skip_under_mosquitto("mqttd's cluster")
class ClusterSys(unittest.TestCase):

    def test_each_node_publishes_its_own_sys_topics(self):
        nodes = start_chain(unique("sys"), 2, lambda n: self.addCleanup(n.cleanup), WAIT_S,
                            extra_args=lambda i: ["--sys-interval", "1"])
        a, b = nodes
        for node in nodes:
            wait_until(lambda: sys_values(node).get("$SYS/cluster/nodes/alive") == "2", WAIT_S,
                       "%s: $SYS/cluster/nodes/alive 2" % node.name,
                       lambda: "%r" % sys_values(node))
        # A live subscriber on b, for several rounds of both nodes: only b's node id.
        out = subprocess.run(["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-t",
                              "$SYS/cluster/node", "-v", "-W", "4"],
                             capture_output=True, text=True, timeout=30)
        seen = {line.split(" ", 1)[1] for line in out.stdout.splitlines()}
        self.assertEqual(seen, {b.name}, out.stdout)
        self.assertEqual(sys_values(a)["$SYS/cluster/node"], a.name)


if __name__ == "__main__":
    unittest.main()
