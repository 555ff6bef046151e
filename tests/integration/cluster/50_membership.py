#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Cluster membership with real mqttd processes (issue 11): three nodes joined through one
seed see each other alive; a node killed with SIGKILL becomes suspect and then dead on the
others within the configured times; restarted with the same node id and data dir it rejoins
with a higher incarnation; a node stopped with SIGTERM is seen as having left; a node without
--cluster-listen runs alone as before."""

import signal
import unittest

import socket
import tempfile

from harness_cluster import SUSPECT_MS, ClusterNode, Node, incarnation_of, unique
from harness_persist import mqttd_command, run_expect_refusal, skip_under_mosquitto

JOIN_S = 10.0
# Detection (a few probe periods) + the suspect timeout + slack for a loaded CI machine.
DEAD_S = SUSPECT_MS / 1000.0 + 5.0


@skip_under_mosquitto("mqttd's cluster")
class Membership(unittest.TestCase):

    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for node in self.nodes:
            node.cleanup()

    def start_cluster(self, n):
        prefix = unique("n")
        first = ClusterNode(prefix + "-1")
        self.nodes.append(first)
        first.start()
        for i in range(2, n + 1):
            node = ClusterNode("%s-%d" % (prefix, i), seeds=[first.cluster_address])
            self.nodes.append(node)
            node.start()
        return self.nodes

    def test_nodes_see_each_other_then_kill_restart_and_leave(self):
        a, b, c = self.start_cluster(3)
        for node in (a, b, c):
            self.assertIn(" cluster=127.0.0.1:%d" % node.cluster_port, node.ready_line())
            for other in (a, b, c):
                if other is not node:
                    node.wait_log(r"cluster: \S+ sees %s joined" % other.name, JOIN_S)

        # SIGKILL: suspect, then dead, on both others.
        marks = {n.name: n.log_mark() for n in (a, b)}
        c.kill()
        for node in (a, b):
            node.wait_log(r"sees %s suspect" % c.name, DEAD_S, since=marks[node.name])
            node.wait_log(r"sees %s dead" % c.name, DEAD_S, since=marks[node.name])
        dead_line = a.wait_log(r"sees %s dead" % c.name, 0, since=marks[a.name])

        # Restart with the same id and data dir: alive again, with a higher incarnation.
        marks = {n.name: n.log_mark() for n in (a, b)}
        c.start()
        for node in (a, b):
            line = node.wait_log(r"sees %s alive" % c.name, JOIN_S, since=marks[node.name])
            self.assertGreater(incarnation_of(line), incarnation_of(dead_line), line)

        # SIGTERM: a graceful leave.
        mark = a.log_mark()
        self.assertEqual(b.stop(), 0)
        a.wait_log(r"sees %s left" % b.name, JOIN_S, since=mark)

    def test_busy_cluster_port_stops_start_up_with_a_clear_error(self):
        with socket.socket() as busy, tempfile.TemporaryDirectory() as data_dir:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            address = "127.0.0.1:%d" % busy.getsockname()[1]
            rc, _, err = run_expect_refusal(
                mqttd_command(data_dir, extra=["--cluster-listen", address]))
        self.assertEqual(rc, 1)
        self.assertIn("cluster: cannot listen on %s" % address, err)

    def test_cluster_port_of_a_running_node_is_busy_for_another(self):
        # gRPC binds with SO_REUSEPORT unless told not to: two nodes would then share the port
        # and split the peers' connections between them.
        a = ClusterNode(unique("port-a"))
        self.nodes.append(a)
        a.start()
        with tempfile.TemporaryDirectory() as data_dir:
            rc, _, err = run_expect_refusal(
                mqttd_command(data_dir, extra=["--cluster-listen", a.cluster_address]))
        self.assertEqual(rc, 1)
        self.assertIn("cluster: cannot listen on %s" % a.cluster_address, err)

    def test_node_without_cluster_listen_runs_alone(self):
        node = Node(node_id=unique("alone"))
        self.nodes.append(node)
        node.start()
        ready = [line for line in node._stdout if " ready " in line][-1]
        self.assertNotIn("cluster=", ready)
        self.assertNotIn("cluster:", node.logs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
