#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Cluster identity with real mqttd processes: nodes a (cluster alpha) and b (cluster beta), each
the other's seed, never list each other (`mqttctl members`), and each logs the other's refusal
naming both clusters; c (alpha), seeded with both, joins a only."""

import re
import time
import unittest

from harness_cluster import ClusterNode, free_port, mqttctl_json, unique, wait_until
from harness_persist import skip_under_mosquitto

WAIT_S = 10.0


@skip_under_mosquitto("mqttd's cluster")
class ClusterName(unittest.TestCase):

    def node(self, name, cluster, seeds, cluster_port=None):
        # Not joined while only the other cluster answers: wait 1 s, not 10, before serving.
        node = ClusterNode(name, seeds=seeds, cluster_port=cluster_port,
                           extra_args=["--cluster-name", cluster, "--cluster-sync-timeout", "1"])
        self.addCleanup(node.cleanup)
        return node

    def members(self, node):
        return sorted(m["nodeId"] for m in mqttctl_json(node, "members").get("members", []))

    def test_nodes_of_different_clusters_seeded_to_each_other_stay_apart(self):
        alpha, beta = unique("alpha"), unique("beta")
        b_port = free_port()
        a = self.node(unique("a"), alpha, ["127.0.0.1:%d" % b_port])
        b = self.node(unique("b"), beta, [a.cluster_address], cluster_port=b_port)
        a.start()
        b.start()
        c = self.node(unique("c"), alpha, [a.cluster_address, b.cluster_address])
        c.start()
        ac = sorted([a.name, c.name])
        wait_until(lambda: self.members(a) == ac and self.members(c) == ac, WAIT_S,
                   "a and c (cluster %s) list each other" % alpha)

        def refusal(refuser, refuser_cluster, caller, caller_cluster):
            return (r"error cluster: %s refused node %s: cluster name mismatch: this node \(%s\) "
                    r"is in cluster '%s', the caller \(%s, %s\) in '%s'" % (
                        re.escape(refuser.cluster_address), caller.name, refuser.name,
                        refuser_cluster, caller.name, re.escape(caller.cluster_address),
                        caller_cluster))
        b.wait_log(refusal(a, alpha, b, beta), WAIT_S)  # b's seed a refused b
        a.wait_log(refusal(b, beta, a, alpha), WAIT_S)  # a's seed b refused a
        c.wait_log(refusal(b, beta, c, alpha), WAIT_S)

        # 2 s of join retries (100 ms probes, join backoff up to 5 s): still apart.
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            self.assertEqual(self.members(a), ac)
            self.assertEqual(self.members(c), ac)
            self.assertEqual(self.members(b), [b.name])
            time.sleep(0.3)  # sampling the nodes' views, not synchronisation
        self.assertNotRegex(b.logs, r"cluster: node %s joined through" % b.name)
        self.assertRegex(c.logs, r"cluster: node %s joined through %s\n" % (
            c.name, re.escape(a.cluster_address)))
        # Rate-limited: one line per refusing address and minute, however many retries.
        self.assertEqual(len(re.findall(refusal(a, alpha, b, beta), b.logs)), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
