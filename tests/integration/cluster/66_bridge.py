#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A bridge in a cluster (issue 16, node/bridge/placement.h): three nodes with the same bridge
to a Mosquitto run it on exactly one node (rendezvous hashing of its name over the alive
members); a message published on any node reaches the remote through it; when that node is
killed, another alive node takes the bridge over and messages flow again. `mqttctl bridges`
asked of any node shows every node's view: one runs and is connected, all name it the owner."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

from harness_cluster import mqttctl_json, start_chain, unique, wait_until
from harness_persist import skip_under_mosquitto

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
bridge_test = __import__("21_bridge")

WAIT_S = 20.0


def running_on(nodes):
    """Nodes whose latest bridge line says it runs there."""
    out = []
    for n in nodes:
        if not n.alive():
            continue
        lines = [l for l in n.logs.splitlines() if "bridge b1: " in l and " on this node" in l]
        if lines and "starting" in lines[-1]:
            out.append(n)
    return out


def arrives(remote_port, node, payload):
    """Publishes `payload` on `node` (QoS 1) and returns whether the remote gets it."""
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(remote_port), "-t", "cl/#", "-C", "1",
                            "-W", "5", "-q", "1"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)  # mosquitto_sub subscribes; -C 1 below is the barrier
    subprocess.run(["mosquitto_pub", "-h", node.host, "-p", str(node.port), "-t", "cl/x", "-m",
                    payload, "-q", "1"], check=True, timeout=10)
    out, _ = sub.communicate(timeout=15)
    return out.strip() == payload


def placement_seen(asked, nodes, owner):
    """`mqttctl bridges` asked of `asked`: a row per alive node, all naming `owner` as the owner,
    running and connected on `owner` only."""
    rows = mqttctl_json(asked, "bridges")["bridges"]
    alive = sorted(n.name for n in nodes if n.alive())
    return (sorted(r["nodeId"] for r in rows) == alive and
            all(r["ownerNodeId"] == owner.name for r in rows) and
            [(r["nodeId"], r["connected"]) for r in rows if r["running"]] == [(owner.name, True)])


@skip_under_mosquitto("mqttd's cluster")
class ClusterBridge(unittest.TestCase):

    def test_bridge_runs_on_one_node_and_moves_when_it_dies(self):
        remote = bridge_test.Mosquitto()
        self.addCleanup(remote.close)
        d = tempfile.mkdtemp(prefix="cluster-bridge-")
        config = os.path.join(d, "mqttd.yaml")
        with open(config, "w") as f:
            f.write(bridge_test.bridge_config(remote.port, ["cl/# out 1"]))
        nodes = start_chain(unique("br"), 3, lambda n: self.addCleanup(n.cleanup), WAIT_S,
                            extra_args=lambda i: ["--config", config])
        owner = wait_until(lambda: running_on(nodes), WAIT_S, "the bridge runs somewhere")
        time.sleep(1.5)  # a second placement round on every node: it must not start twice
        self.assertEqual(len(running_on(nodes)), 1, [n.name for n in running_on(nodes)])
        owner = running_on(nodes)[0]
        owner.wait_log("bridge b1 connected", WAIT_S)
        other = next(n for n in nodes if n is not owner)
        wait_until(lambda: placement_seen(other, nodes, owner), WAIT_S,
                   "mqttctl bridges shows it running on %s" % owner.name)
        wait_until(lambda: arrives(remote.port, other, "via-%s" % owner.name), WAIT_S,
                   "a message published on a non-owner reaches the remote")

        owner.kill()
        survivors = [n for n in nodes if n is not owner]
        heir = wait_until(lambda: running_on(survivors), WAIT_S, "another node takes it over")
        self.assertEqual(len(heir), 1)
        heir[0].wait_log("bridge b1 connected", WAIT_S)
        wait_until(lambda: placement_seen(survivors[0], survivors, heir[0]), WAIT_S,
                   "mqttctl bridges shows it moved to %s" % heir[0].name)
        wait_until(lambda: arrives(remote.port, survivors[0], "after-kill"), WAIT_S,
                   "messages flow through the new owner")


if __name__ == "__main__":
    unittest.main()
