#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Two sessions with one client id during a netsplit, one after the heal (issue 12, "Netsplit";
docs/cluster-sessions.md), with `--cluster-allow-register-during-netsplit` on three real nodes,
each in its own network namespace (netns.py):

Node 2 is cut off. A persistent client X (5.0, Session Expiry 3600) connects to node 2: there is
no registry majority on that side, and the switch lets it in unregistered. The same client id
connects to node 0, on the majority side, which registers it. Two sessions with one client id
live, as the switch allows. The partition heals; then, within a bounded time:
- node 2 registers its connection (the newest registration), so node 0 closes its own with
  DISCONNECT 0x8E Session taken over [MQTT-3.1.4-2] (5.0 3.14.2.1);
- exactly one node has X connected, and node 0's copy of the session is collected by node 2
  (node 0 lists no session for X any more);
- a QoS 1 message published on node 1 afterwards reaches X exactly once, on node 2.

Needs root and iproute2: without them the test fails (it does not skip): CI runs as root."""

import json
import os
import signal
import subprocess
import threading
import time
import unittest

from harness_cluster import unique, wait_until
from harness_persist import skip_under_mosquitto
from harness import DISCONNECT, PUBACK, Closed  # on the path harness_persist sets
from harness5 import SESSION_EXPIRY_INTERVAL, RawClient5, publish5_packet
import netns

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
DEADLINE_S = 150          # the whole test, hard (SIGALRM); ctest's TIMEOUT is above it
JOIN_S = 15.0
DEAD_S = 8.0
HEAL_S = 20.0
# After the heal: the registration (every 5 s) and the collect (10-15 s after the copy is stale).
SETTLE_S = 45.0
TAKEN_OVER = 0x8E


class Deadline(BaseException):
    pass


def _on_alarm(signum, frame):
    raise Deadline("68_netsplit_sessions: the test's deadline of %ds passed" % DEADLINE_S)


class InsideSubscriber:
    """mosquitto_sub inside node i's namespace (the only place an isolated node is reachable
    from): 5.0, persistent session, QoS 1; its output lines are collected."""

    def __init__(self, topo, i, client_id, topic):
        # stdbuf: mosquitto_sub's stdout is block-buffered into a pipe.
        cmd = topo.exec_prefix(i) + [
            "stdbuf", "-oL", "mosquitto_sub", "-h", topo.addr(i), "-p", str(netns.MQTT_PORT), "-V", "5",
            "-i", client_id, "-c", "-x", "3600", "-q", "1", "-t", topic]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@skip_under_mosquitto("mqttd's cluster in network namespaces")
class NetsplitSessions(unittest.TestCase):

    def setUp(self):
        try:
            netns.require_netns()
            problem = None
        except netns.NetnsUnavailable as e:
            problem = str(e)
        if problem:  # a failure, not a skip: CI runs as root and must run this
            self.fail("cannot build the partition topology: %s" % problem)
        self.assertTrue(MQTTCTL and os.path.exists(MQTTCTL), "MQTTCTL_BIN not set")
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(DEADLINE_S)
        self.addCleanup(signal.alarm, 0)
        self.topo = netns.Topology(3)
        self.addCleanup(self.topo.cleanup)
        prefix = unique("ns")
        names = ["%s-%d" % (prefix, i) for i in range(3)]
        self.nodes = []
        for i in range(3):
            seeds = [self.topo.cluster_address(j) for j in range(3) if j != i]
            self.nodes.append(self.topo.node(
                i, names[i], seeds=seeds,
                extra_args=["--cluster-bootstrap-members", ",".join(names),
                            "--cluster-allow-register-during-netsplit", "true"]))
        netns.start_all(self.nodes)
        self.isolated = set()

    def mqttctl(self, i, *args):
        cmd = [MQTTCTL, "--server", self.topo.cluster_address(i), "--json"] + list(args)
        if i in self.isolated:
            out = self.topo.run_in(i, cmd)
        else:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def sessions(self, i, client_id):
        """mqttctl's entry for client_id's session on node i, None if it has none (or node i
        cannot be asked). mqttctl asks every member it reaches: the entry must be node i's."""
        answer = self.mqttctl(i, "sessions", "--client-id", client_id) or {}
        for s in answer.get("sessions", []):
            if s["clientId"] == client_id and s["nodeId"] == self.nodes[i].name:
                return s
        return None

    def state_on(self, i, name):
        for m in (self.mqttctl(i, "members") or {}).get("members", []):
            if m["nodeId"] == name:
                return m["state"]
        return None

    def all_alive(self):
        for i in range(3):
            answer = self.mqttctl(i, "members")
            if answer is None:
                return False
            states = [m["state"] for m in answer.get("members", [])]
            if states != ["alive"] * 3:
                return False
        return True

    def views(self, client_id):
        lines = ["node %d: %r" % (i, self.sessions(i, client_id)) for i in range(3)]
        for node in self.nodes:
            lines.append("---- %s ----\n%s" % (node.name, node.log_tail(20)))
        return "\n".join(lines)

    def connect_registered(self, i, client_id):
        """X connected to node i with a registration (the majority side may still be electing
        a leader: then the switch lets the CONNECT in unregistered, and it is retried)."""
        def attempt():
            client = RawClient5(self.nodes[i])
            client.connect5(client_id, clean_start=False,
                            props=[(SESSION_EXPIRY_INTERVAL, 3600)])
            if int((self.sessions(i, client_id) or {}).get("registryEpoch", 0)) > 0:
                return client
            client.close()
            return None
        return wait_until(attempt, JOIN_S, "X registered on node %d" % i)

    def test_two_sessions_during_the_split_one_after_the_heal(self):
        wait_until(self.all_alive, JOIN_S, "3 alive members on every node")
        client_id = unique("split")
        topic = "split/%s" % client_id

        self.topo.isolate(2)
        self.isolated.add(2)
        wait_until(lambda: self.state_on(0, self.nodes[2].name) == "dead", DEAD_S,
                   "node 0 sees node 2 dead")
        inside = InsideSubscriber(self.topo, 2, client_id, topic)
        self.addCleanup(inside.close)
        # Node 2 takes it unregistered once its registry proposal times out (5 s).
        wait_until(lambda: (self.sessions(2, client_id) or {}).get("connected"), 20.0,
                   "X connected on the isolated node 2", lambda: self.views(client_id))
        self.assertEqual(int(self.sessions(2, client_id).get("registryEpoch", 0)), 0,
                         "node 2 cannot have registered X")
        outside = self.connect_registered(0, client_id)

        self.addCleanup(outside.close)
        self.topo.heal(2)
        self.isolated.discard(2)
        wait_until(self.all_alive, HEAL_S, "3 alive members after the heal",
                   lambda: self.views(client_id))
        # The majority side's connection is taken over by node 2's registration.
        deadline = time.monotonic() + SETTLE_S
        reason = None
        while reason is None and time.monotonic() < deadline:
            try:
                p = outside.recv(timeout=1.0)
            except TimeoutError:
                continue
            except (Closed, OSError):
                reason = "closed without DISCONNECT"
                break
            if p.type == DISCONNECT:
                reason = p.body[0] if p.body else 0
        self.assertEqual(reason, TAKEN_OVER, "node 0's connection of X after the heal: %r\n%s"
                         % (reason, self.views(client_id)))
        wait_until(lambda: (self.sessions(2, client_id) or {}).get("connected")
                   and self.sessions(0, client_id) is None
                   and not (self.sessions(1, client_id) or {}).get("connected"),
                   SETTLE_S, "X connected on node 2 only, node 0's copy collected",
                   lambda: self.views(client_id))

        pub = RawClient5(self.nodes[1])
        self.addCleanup(pub.close)
        pub.connect5(unique("pub"))
        payload = "after-heal-%s" % client_id
        pub.send(publish5_packet(topic, payload, qos=1, pid=1))
        pub.wait_for(PUBACK, 1)
        wait_until(lambda: payload in inside.lines, HEAL_S, "the message reached X on node 2",
                   lambda: self.views(client_id))
        time.sleep(1.0)  # a negative check after the positive barrier above: a duplicate
        self.assertEqual(inside.lines.count(payload), 1, inside.lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
