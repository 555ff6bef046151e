#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Mutual TLS on the cluster port (issue 14, "The cluster port"; cluster/cluster_tls.h): three
real nodes with --cluster-tls-cert/--cluster-tls-key/--cluster-tls-ca (a certificate each, from
one cluster CA, with the DNS SAN mqttd-cluster) form a cluster, forward publishes and register
client ids (a takeover across nodes, [MQTT-3.1.4-2]); mqttctl works with a certificate of the
cluster CA and fails without one or with one from another CA; a fourth node without a
certificate, or with one from another CA, cannot join (the others never list it) nor forward;
a half-configured node refuses to start, naming the missing key.

The registry's Raft port speaks mutual TLS with the same files (cluster/raft_tls_transport.h):
the registry forms over it (the takeover test), `openssl s_client` with a node certificate
completes the handshake (the port's certificate verifies against the cluster CA with the name
mqttd-cluster) while without a certificate, or with one of another CA, or without the name, it
fails; raft_uv_tcp's plaintext handshake sent to the port gets the connection closed and the node
keeps registering; a node without a certificate is never made a registry member."""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from harness_cluster import (ClusterNode, free_port, mqttctl_json, start_chain, unique,
                             wait_until)
from harness_persist import skip_under_mosquitto

from harness import RawClient  # noqa: E402 (on the path harness_cluster sets)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import certs  # noqa: E402

MQTTCTL = os.environ.get("MQTTCTL_BIN", "")
MQTTD = os.environ.get("MQTTD_BIN", "")
WAIT_S = 15.0
SERVER_NAME = "DNS:mqttd-cluster"
BOTH = "serverAuth,clientAuth"  # a node is a TLS server to its peers and a client of them


def make_certs(d):
    certs.make_ca(d, "cluster-ca")
    certs.make_ca(d, "other-ca")
    for i in range(3):
        certs.make_cert(d, "node%d" % i, "cluster-ca", "node%d" % i, 0x100 + i, san=SERVER_NAME,
                        usage=BOTH)
    certs.make_cert(d, "admin", "cluster-ca", "admin", 0x200)  # a client certificate only
    certs.make_cert(d, "rogue", "other-ca", "rogue", 0x300, san=SERVER_NAME, usage=BOTH)


def tls_flags(d, name, ca="cluster-ca"):
    return ["--cluster-tls-cert", os.path.join(d, name + ".crt"),
            "--cluster-tls-key", os.path.join(d, name + ".key"),
            "--cluster-tls-ca", os.path.join(d, ca + ".crt")]


def mqttctl_tls(d, name, ca="cluster-ca"):
    return ["--tls-cert", os.path.join(d, name + ".crt"),
            "--tls-key", os.path.join(d, name + ".key"),
            "--tls-ca", os.path.join(d, ca + ".crt")]


@skip_under_mosquitto("mqttd's cluster")
class ClusterTls(unittest.TestCase):
    nodes = []

    @classmethod
    def setUpClass(cls):
        if not MQTTCTL or not os.path.exists(MQTTCTL):
            raise unittest.SkipTest("MQTTCTL_BIN not set (run through ctest)")
        cls.dir = tempfile.mkdtemp(prefix="cluster-tls-")
        cls.nodes = []
        try:
            make_certs(cls.dir)
            start_chain(unique("tls"), 3, cls.nodes.append, WAIT_S,
                        extra_args=lambda i: tls_flags(cls.dir, "node%d" % i),
                        mqttctl_args=mqttctl_tls(cls.dir, "admin"))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for node in cls.nodes:
            node.cleanup()
        cls.nodes = []
        shutil.rmtree(cls.dir, ignore_errors=True)

    def raw(self, node):
        client = RawClient(node.host, node.port)
        self.addCleanup(client.sock.close)
        return client

    def mqttctl(self, node, *args):
        return subprocess.run([MQTTCTL, "--server", node.cluster_address] + list(args),
                              capture_output=True, text=True, timeout=30)

    def rogue(self, extra):
        """A 4th node joining through node 0 with `extra` flags."""
        node = ClusterNode(unique("rogue"), seeds=[self.nodes[0].cluster_address],
                           extra_args=["--cluster-sync-timeout", "1", "--log-level", "debug",
                                       # takes clients without a registry: it could forward
                                       "--cluster-allow-register-during-netsplit", "true"] +
                           extra)
        self.addCleanup(node.cleanup)
        node.start()
        return node

    def assert_never_member(self, rogue):
        """For 3 s (many join attempts at 100 ms probes), no member lists the rogue node."""
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for n in self.nodes:
                ids = {m["nodeId"] for m in mqttctl_json(n, "members").get("members", [])}
                self.assertNotIn(rogue.name, ids, "%s lists the rogue node" % n.name)
            time.sleep(0.3)  # sampling the members' views, not synchronisation

    def assert_not_forwarded(self, rogue):
        """A publish on the rogue node does not reach a subscriber on node 2."""
        topic = unique("tls/rogue")
        sub = self.raw(self.nodes[2])
        sub.connect()
        sub.subscribe([(topic, 1)])
        pub = self.raw(rogue)
        pub.connect()
        pub.publish(topic, b"from the rogue", qos=1)
        sub.expect_none(2.0)

    def test_members_and_status_over_mutual_tls(self):
        members = mqttctl_json(self.nodes[1], "members")["members"]
        self.assertEqual(sorted(m["nodeId"] for m in members), sorted(n.name for n in self.nodes))
        self.assertTrue(all(m["state"] == "alive" for m in members))
        self.assertIn("clients", mqttctl_json(self.nodes[2], "status"))

    def test_publish_is_forwarded_across_nodes(self):
        """[MQTT-3.8.4-6]: delivered at min(published, granted) QoS, across the TLS peer link."""
        topic = unique("tls/fwd")
        sub = self.raw(self.nodes[2])
        sub.connect()
        self.assertEqual(sub.subscribe([(topic, 1)]), [1])

        def routed():
            routes = mqttctl_json(self.nodes[0], "routes").get("routes", [])
            return any(r["filter"] == topic for r in routes)
        wait_until(routed, WAIT_S, "node 0 holds node 2's route")
        pub = self.raw(self.nodes[0])
        pub.connect()
        pub.publish(topic, b"over mTLS", qos=1)
        p = sub.recv_publish(WAIT_S)
        self.assertEqual((p.topic, p.payload, p.qos), (topic, b"over mTLS", 1))

    def test_takeover_across_nodes(self):
        """[MQTT-3.1.4-2]: the registry (its proposals ride the TLS port) closes the first
        connection of a client id that connects again on another node."""
        client_id = unique("take")
        first = self.raw(self.nodes[0])
        first.connect(client_id)
        second = self.raw(self.nodes[1])
        second.connect(client_id)
        first.wait_closed(WAIT_S)
        second.ping()

    def test_mqttctl_without_certificate_fails_clearly(self):
        out = self.mqttctl(self.nodes[0], "members")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("cannot reach the node", out.stderr)
        self.assertIn("certificate of the cluster CA", out.stderr)

    def test_mqttctl_with_certificate_of_another_ca_fails(self):
        out = self.mqttctl(self.nodes[0], *mqttctl_tls(self.dir, "rogue", "other-ca"), "status")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("cannot reach the node", out.stderr)
        # Our own CA with the rogue's certificate: the node verifies, refuses (and vice versa).
        out = self.mqttctl(self.nodes[0], *mqttctl_tls(self.dir, "rogue"), "status")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)

    def test_mqttctl_tls_flags_go_together(self):
        out = self.mqttctl(self.nodes[0], "--tls-cert", os.path.join(self.dir, "admin.crt"),
                           "status")
        self.assertEqual(out.returncode, 2)
        self.assertIn("--tls-cert, --tls-key and --tls-ca go together", out.stderr)

    def test_node_without_certificate_cannot_join(self):
        mark = self.nodes[0].log_mark()
        rogue = self.rogue([])
        # Plaintext against TLS: the rogue sees the connection closed, the seed (gRPC) the
        # failed handshake.
        rogue.wait_log(r"join through .* failed: .*Socket closed", WAIT_S)
        self.nodes[0].wait_log(r"Handshake failed", WAIT_S, since=mark)
        self.assert_never_member(rogue)
        self.assertFalse(rogue.logs.count("joined through"), "the rogue node joined")
        self.assert_not_forwarded(rogue)

    def test_node_with_certificate_of_another_ca_cannot_join(self):
        rogue = self.rogue(tls_flags(self.dir, "rogue", "other-ca"))
        # gRPC reports the failed handshake (the peer's certificate does not verify).
        rogue.wait_log(r"Handshake failed .*certificate verify failed", WAIT_S)
        self.assert_never_member(rogue)
        self.assertFalse(rogue.logs.count("joined through"), "the rogue node joined")
        self.assert_not_forwarded(rogue)

    def test_node_no_longer_warns_about_the_raft_port(self):
        self.nodes[0].wait_log(r" ready ", 1.0)
        self.assertNotIn("plaintext and unauthenticated", self.nodes[0].logs)

    def s_client(self, node, *args, tls12=False):
        """`openssl s_client` to the node's Raft port; (exit code, output)."""
        cmd = ["openssl", "s_client", "-connect", "%s:%d" % (node.host, node.raft_port),
               "-CAfile", os.path.join(self.dir, "cluster-ca.crt"),
               "-verify_hostname", "mqttd-cluster", "-verify_return_error", "-ign_eof"]
        if tls12:
            cmd.append("-tls1_2")
        out = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        return out.returncode, out.stdout + out.stderr

    def test_raft_port_handshake_with_a_cluster_certificate(self):
        """The port presents the node's certificate (verified against the cluster CA with
        mqttd-cluster) and accepts ours; then it waits for a Raft preamble we do not send."""
        code, text = self.s_client(self.nodes[1], "-cert", os.path.join(self.dir, "node0.crt"),
                                   "-key", os.path.join(self.dir, "node0.key"), "-brief")
        self.assertIn("Verification: OK", text)
        self.assertNotIn("alert", text)

    def test_raft_port_refuses_a_handshake_without_certificate(self):
        code, text = self.s_client(self.nodes[1], tls12=True)
        self.assertNotEqual(code, 0, text)
        self.assertIn("handshake failure", text)  # the server's alert under TLS 1.2
        # TLS 1.3: the client's side ends first; the server's alert follows, nothing else.
        code, text = self.s_client(self.nodes[1])
        self.assertIn("alert certificate required", text)

    def test_raft_port_refuses_a_certificate_of_another_ca(self):
        rogue = ["-cert", os.path.join(self.dir, "rogue.crt"),
                 "-key", os.path.join(self.dir, "rogue.key")]
        code, text = self.s_client(self.nodes[1], *rogue, tls12=True)
        self.assertNotEqual(code, 0, text)
        self.assertIn("alert unknown ca", text)
        code, text = self.s_client(self.nodes[1], *rogue)
        self.assertIn("alert unknown ca", text)

    def test_raft_port_refuses_a_certificate_without_the_server_name(self):
        """admin.crt: the cluster CA's, but without the DNS SAN mqttd-cluster (gRPC's rule)."""
        code, text = self.s_client(self.nodes[1], "-cert", os.path.join(self.dir, "admin.crt"),
                                   "-key", os.path.join(self.dir, "admin.key"), tls12=True)
        self.assertNotEqual(code, 0, text)
        self.assertIn("Verified peername: mqttd-cluster", text)  # we accepted the node's
        self.assertIn("alert bad certificate", text)  # it refused ours

    def test_plaintext_raft_handshake_is_closed_and_the_node_keeps_registering(self):
        """What a plaintext raft_uv_tcp peer sends first (protocol 1, a raft id, an address):
        the node closes the connection at once (raft_uv_tcp would keep it open, waiting for
        messages) and stays healthy."""
        node = self.nodes[2]
        address = b"127.0.0.1:1\0\0\0\0\0"  # padded to 16
        hello = struct.pack("<QQQ", 1, 12345, len(address)) + address
        with socket.create_connection((node.host, node.raft_port), timeout=5) as sock:
            sock.sendall(hello)
            received = b""
            while True:  # a TLS alert at most, then EOF (or a reset)
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    break
                except socket.timeout:
                    self.fail("the Raft port kept a plaintext connection open")
                if not chunk:
                    break
                received += chunk
            self.assertLess(len(received), 16, "the port answered more than an alert")
        self.assertTrue(node.alive())
        client_id = unique("after-plain")
        first = self.raw(node)
        first.connect(client_id)
        second = self.raw(self.nodes[0])
        second.connect(client_id)  # [MQTT-3.1.4-2] through the registry, after the intruder
        first.wait_closed(WAIT_S)
        second.ping()

    def test_node_without_certificate_is_never_a_registry_member(self):
        mark = [n.log_mark() for n in self.nodes]
        rogue = self.rogue([])
        rogue.wait_log(r"join through .* failed", WAIT_S)
        time.sleep(2.0)  # the leader adds members as they join: give it the chance it must miss
        for n, since in zip(self.nodes, mark):
            self.assertNotIn(rogue.name, n.logs[since:], "%s mentions the rogue node" % n.name)
        # The rogue's own raft connections to the members' ports fail their handshakes.
        self.assertNotIn("registry %s: leader" % rogue.name, rogue.logs)

    def test_missing_key_is_a_start_up_error(self):
        if not MQTTD or not os.path.exists(MQTTD):
            self.skipTest("MQTTD_BIN not set (run through ctest)")
        data = tempfile.mkdtemp(prefix="cluster-tls-half-")
        self.addCleanup(shutil.rmtree, data, True)
        out = subprocess.run(
            [MQTTD, "--data-dir", data, "--listen", "127.0.0.1:%d" % free_port(),
             "--http-listen", "", "--cluster-listen", "127.0.0.1:%d" % free_port(),
             "--cluster-tls-cert", os.path.join(self.dir, "node0.crt"),
             "--cluster-tls-ca", os.path.join(self.dir, "cluster-ca.crt")],
            capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("cluster.tls.key_file (--cluster-tls-key) is not set", out.stderr)

    def test_a_file_that_is_no_pem_is_a_start_up_error(self):
        if not MQTTD or not os.path.exists(MQTTD):
            self.skipTest("MQTTD_BIN not set (run through ctest)")
        data = tempfile.mkdtemp(prefix="cluster-tls-bad-")
        self.addCleanup(shutil.rmtree, data, True)
        bad = os.path.join(data, "bad.key")
        with open(bad, "w") as f:
            f.write("not a key\n")
        args = tls_flags(self.dir, "node0")
        args[3] = bad
        out = subprocess.run(
            [MQTTD, "--data-dir", data, "--listen", "127.0.0.1:%d" % free_port(),
             "--http-listen", "", "--cluster-listen", "127.0.0.1:%d" % free_port()] + args,
            capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("holds no PEM data", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
