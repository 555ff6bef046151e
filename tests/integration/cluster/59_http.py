#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""/readyz and /metrics of clustered nodes (node/http, ClusterNode::ready): a node whose seed
is not up yet serves (--cluster-sync-timeout 0) but /readyz says 503 "cluster: ..." until it has
joined and its client-id registry is ready, then 200; on a 2-node cluster both export
mqttd_cluster_members{state="alive"} 2 and one registry leader."""

import os
import sys
import unittest
import urllib.error
import urllib.request

from harness_cluster import ClusterNode, free_port, unique, wait_until
from harness_persist import skip_under_mosquitto

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
http_test = __import__("12_http")  # its parser and GET helper

WAIT_S = 20.0


def get(address, path):
    try:
        return http_test.get(address, path)
    except (urllib.error.URLError, ConnectionError, OSError):
        return None, ""


@skip_under_mosquitto("mqttd's cluster")
class ClusterHttp(unittest.TestCase):

    def test_readyz_waits_for_join_and_members_gauge(self):
        prefix = unique("http")
        a_cluster_port = free_port()
        a_http = "127.0.0.1:%d" % free_port()
        b_http = "127.0.0.1:%d" % free_port()
        # b first: its seed (a) is not listening yet.
        b = ClusterNode(prefix + "-b", seeds=["127.0.0.1:%d" % a_cluster_port],
                        extra_args=["--http-listen", b_http, "--cluster-sync-timeout", "0"])
        self.addCleanup(b.cleanup)
        b.start()
        self.assertIn(" http=" + b_http, b.ready_line())
        self.assertEqual(get(b_http, "/healthz"), (200, "ok\n"))
        status, body = get(b_http, "/readyz")
        self.assertEqual(status, 503, body)
        self.assertTrue(body.startswith("cluster: "), body)

        a = ClusterNode(prefix + "-a", cluster_port=a_cluster_port,
                        extra_args=["--http-listen", a_http])
        self.addCleanup(a.cleanup)
        a.start()
        for node, address in ((a, a_http), (b, b_http)):
            wait_until(lambda: get(address, "/readyz") == (200, "ready\n"), WAIT_S,
                       "%s /readyz 200" % node.name, lambda: "%r\n%s" % (
                           get(address, "/readyz"), node.log_tail(20)))

        def members_alive(address):
            samples, _ = http_test.parse_metrics(get(address, "/metrics")[1])
            return samples.get(("mqttd_cluster_members", '{state="alive"}'))
        for address in (a_http, b_http):
            wait_until(lambda: members_alive(address) == 2, WAIT_S,
                       "%s: mqttd_cluster_members{state=\"alive\"} 2" % address)
            samples, _ = http_test.parse_metrics(get(address, "/metrics")[1])
            self.assertEqual(samples[("mqttd_registry_leader_known", "")], 1)
            peers = [labels for name, labels in samples if name == "mqttd_cluster_outbox_messages"]
            self.assertLessEqual(len(peers), 1, peers)  # at most the other node

        def leaders():
            return sum(http_test.parse_metrics(get(address, "/metrics")[1])[0].get(
                ("mqttd_registry_is_leader", ""), 0) for address in (a_http, b_http))
        wait_until(lambda: leaders() == 1, WAIT_S, "exactly one mqttd_registry_is_leader 1")

if __name__ == "__main__":
    unittest.main(verbosity=2)
