# SPDX-License-Identifier: Apache-2.0
"""Several real mqttd processes forming one cluster on loopback (issue 11).

ClusterNode wraps harness_persist.Node (one process, restartable on the same ports and data
dir) with a cluster gRPC port and the flags that join it to the others; wait_log() waits, with
a deadline, for a line of its log. Timings are short (probe 100 ms, suspect 500 ms) so that a
kill is noticed within a second or two.
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "persistence"))

from harness_persist import Node, free_port, unique  # noqa: E402,F401

PROBE_MS = 100
SUSPECT_MS = 500


class ClusterNode(Node):
    """host / port / cluster_port default to 127.0.0.1 and free ports. netns: run the process
    as `ip netns exec NETNS mqttd ...` (ip execs mqttd, so proc.pid is mqttd's; see netns.py),
    listening on host, an address of that namespace."""

    def __init__(self, name, seeds=(), extra_args=(), host=None, port=None, cluster_port=None,
                 netns=None, raft_port=None, mqttctl_args=()):
        self.name = name
        self.mqttctl_args = list(mqttctl_args)  # e.g. --tls-* for a node with cluster TLS
        if host is not None:
            self.host = host
        self.netns = netns
        self.cluster_port = cluster_port or free_port()
        self.raft_port = raft_port or free_port()  # the client-id registry's Raft transport
        self.seeds = list(seeds)
        args = ["--cluster-listen", "%s:%d" % (self.host, self.cluster_port),
                "--cluster-raft-listen", "%s:%d" % (self.host, self.raft_port),
                "--cluster-probe-interval", str(PROBE_MS),
                "--cluster-suspect-timeout", str(SUSPECT_MS)]
        if self.seeds:
            args += ["--join", ",".join(self.seeds)]
        super().__init__(extra_args=args + list(extra_args), node_id=name)
        if port is not None:
            self.port = port

    @property
    def cluster_address(self):
        return "%s:%d" % (self.host, self.cluster_port)

    def command(self):
        cmd = super().command()
        return ["ip", "netns", "exec", self.netns] + cmd if self.netns else cmd

    def ready_line(self):
        lines = [line for line in self._stdout if " ready " in line]
        return lines[-1] if lines else ""

    def wait_log(self, pattern, timeout, since=0):
        """The first log line (from character offset `since` of the whole log) that matches
        `pattern`, waiting at most `timeout` seconds. Raises AssertionError with the log tail."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.logs[since:].splitlines():
                if regex.search(line):
                    return line
            if time.monotonic() >= deadline:
                raise AssertionError("%s: no log line matching %r within %.1fs; log tail:\n%s"
                                     % (self.name, pattern, timeout, self.log_tail(30)))
            time.sleep(0.05)  # polling a log file, not synchronisation between nodes

    def log_mark(self):
        return len(self.logs)


def incarnation_of(line):
    m = re.search(r"incarnation (\d+)", line)
    return int(m.group(1)) if m else -1


def wait_until(predicate, timeout, what, describe=None):
    """predicate()'s first truthy value, polled every 100 ms for at most timeout seconds; else
    AssertionError naming `what` (and describe()'s text, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("not within %.1fs: %s%s" % (
                timeout, what, ("\n" + describe()) if describe else ""))
        time.sleep(0.1)  # polling other processes' views, not synchronisation


def mqttctl_json(node, *args):
    """The JSON answer of `mqttctl --json ARGS` asked of `node` (MQTTCTL_BIN); AssertionError
    with its stderr if it fails."""
    out = subprocess.run([os.environ.get("MQTTCTL_BIN", ""), "--server", node.cluster_address,
                          "--json"] + node.mqttctl_args + list(args),
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("mqttctl %s: exit %d\n%s" % (args, out.returncode, out.stderr))
    return json.loads(out.stdout)


def start_chain(prefix, count, started, timeout, extra_args=lambda i: [], mqttctl_args=()):
    """`count` nodes PREFIX-0..count-1, each joining through node 0, started one after another;
    returns them once every node lists every other alive (at most `timeout` s). `started(node)` is
    called as soon as a node exists, before it starts, so that a failure later still cleans it
    up (addCleanup, or a list a tearDownClass walks)."""
    nodes = []
    for i in range(count):
        seeds = [nodes[0].cluster_address] if nodes else []
        node = ClusterNode("%s-%d" % (prefix, i), seeds=seeds, extra_args=extra_args(i),
                           mqttctl_args=mqttctl_args)
        started(node)
        node.start()
        nodes.append(node)
    wait_members_alive(nodes, timeout)
    return nodes


def wait_members_alive(nodes, timeout):
    """Until every node of `nodes` lists all of them alive."""
    names = {n.name for n in nodes}

    def all_alive():
        for n in nodes:
            members = mqttctl_json(n, "members").get("members", [])
            if not names <= {m["nodeId"] for m in members if m["state"] == "alive"}:
                return False
        return True
    wait_until(all_alive, timeout, "every node sees %r alive" % sorted(names))



class SharedCluster(unittest.TestCase):
    """A test class whose tests share one cluster of NODES nodes (start_chain), started once in
    setUpClass (skipped without MQTTCTL_BIN, as mqttctl-driven checks need it) and stopped in
    tearDownClass, also when starting it failed half-way. `node_args(i)`: extra flags of node i."""

    NODES = 3
    PREFIX = "c"
    TIMEOUT_S = 15.0
    nodes = []

    @staticmethod
    def node_args(i):
        return []

    @classmethod
    def setUpClass(cls):
        mqttctl = os.environ.get("MQTTCTL_BIN", "")
        if not mqttctl or not os.path.exists(mqttctl):
            raise unittest.SkipTest("MQTTCTL_BIN not set (run through ctest)")
        cls.nodes = []
        try:
            start_chain(unique(cls.PREFIX), cls.NODES, cls.nodes.append, cls.TIMEOUT_S,
                        cls.node_args)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for node in cls.nodes:
            node.cleanup()
        cls.nodes = []
