#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`mqttctl rebalance` (issue 12 "Drain, leave, scale in"), with real nodes on loopback: 60
persistent 3.1.1 clients all on node a of 3 (as after a scale-out: the new nodes sit idle). The
rebalance makes a close 40 of them at a bounded rate; each closed client reconnects "through the
load balancer" (here: the test sends reconnections to b and c in turn, as a round-robin balancer
would) and finds its session there (Session Present 1 [MQTT-3.2.2-2]: the session followed it by
handover); mqttctl waits until every node holds its share (20 +- 10 %) and exits 0."""

import itertools
import os
import subprocess
import threading
import time
import unittest

from harness_cluster import SharedCluster, unique, wait_until
from harness_persist import skip_under_mosquitto

from harness import Closed, RawClient  # noqa: E402 (on the path harness_cluster sets)

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
WAIT_S = 15.0
CLIENTS = 60


@skip_under_mosquitto("mqttd's cluster")
class Rebalance(SharedCluster):
    PREFIX = "rb"

    def test_rebalance_spreads_connections_and_sessions_follow(self):
        a, b, c = self.nodes
        balancer = itertools.cycle([b, c])
        lock = threading.Lock()
        moved = {}  # client id -> (node name, session present)
        clients = []
        self.addCleanup(lambda: [x.close() for x in clients])

        def follow(client, client_id):
            """Waits for the node to close the connection, then reconnects elsewhere."""
            try:
                client.wait_closed(60)
            except (AssertionError, Closed, OSError):
                return
            with lock:
                node = next(balancer)
            again = RawClient(node)
            present, _ = again.connect(client_id, clean=False)
            with lock:
                clients.append(again)
                moved[client_id] = (node.name, present)

        threads = []
        for i in range(CLIENTS):
            client_id = unique("rb-%d" % i)
            client = RawClient(a)
            client.connect(client_id, clean=False)
            client.subscribe([(unique("rb/t"), 1)])
            clients.append(client)
            t = threading.Thread(target=follow, args=(client, client_id), daemon=True)
            t.start()
            threads.append(t)

        started = time.monotonic()
        out = subprocess.run([MQTTCTL, "--server", a.cluster_address, "rebalance", "--rate", "200",
                              "--timeout", "60"], capture_output=True, text=True, timeout=90)
        self.assertEqual(out.returncode, 0, "%s%s" % (out.stdout, out.stderr))
        self.assertIn("(balanced)", out.stdout)
        self.assertIn("closed 40 connections", out.stdout)
        took = time.monotonic() - started
        # 40 closed at 200/s take at least 0.1 s steps: the rate is honoured, not all at once.
        self.assertGreater(took, 0.15, out.stdout)
        wait_until(lambda: len(moved) == 40, WAIT_S, "40 clients reconnected",
                   lambda: repr(moved))
        self.assertEqual({name for name, _ in moved.values()}, {b.name, c.name})
        self.assertEqual([cid for cid, (_, present) in moved.items() if present != 1], [],
                         "sessions that did not follow their client")


if __name__ == "__main__":
    unittest.main()
