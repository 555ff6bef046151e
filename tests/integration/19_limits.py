#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Limits (issue 14, "Limits"), each observed over real sockets with its /metrics counter:
--message-rate and --byte-rate slow a publisher down (reading pauses) and lose nothing;
--max-connections and --connection-rate close sockets beyond them at once; a connection that
does not finish CONNECT within --connect-timeout is closed (slowloris); above the disk watermark
(--min-free-disk 100% makes it exceeded from the start) new persistent sessions and QoS 1/2
messages that would be stored are refused while clean sessions and QoS 0 go on, and a session
the node already holds is still served. mqttd only."""

import os
import socket
import sys
import time
import unittest
import urllib.request

import harness
from harness import WAIT, RawClient, connect_packet, publish_packet, unique

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "v5"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "persistence"))
from harness5 import RawClient5  # noqa: E402


def metrics(ready_line):
    address = [w[len("http="):] for w in ready_line.split() if w.startswith("http=")][0]
    with urllib.request.urlopen("http://%s/metrics" % address, timeout=WAIT) as r:
        return r.read().decode()


def sample(ready_line, prefix):
    """The value of the first /metrics line starting with `prefix` (name{labels})."""
    text = metrics(ready_line)
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no %s in /metrics:\n%s" % (prefix, text))


def closed_at_once(host, port, timeout=2.0):
    """True if the broker closes a new TCP connection without reading a CONNECT."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(connect_packet(unique("gate")))
        data = s.recv(16)
        return data == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


@harness.only_mqttd("mqttd limits")
class RateLimitTest(unittest.TestCase):
    def start(self, *args):
        self.broker = harness.start_broker(["--workers", "1"] + list(args))
        self.addCleanup(self.broker.stop)

    def publish_all(self, n, payload, qos):
        """n PUBLISHes written at once; returns the seconds until the last PUBACK (or PINGRESP)."""
        topic = unique("rl")
        sub = RawClient(self.broker)
        self.addCleanup(sub.close)
        sub.connect(unique("sub"))
        sub.subscribe([(topic, 1)])
        pub = RawClient(self.broker)
        self.addCleanup(pub.close)
        pub.connect(unique("pub"))
        start = time.monotonic()
        pub.send(b"".join(publish_packet(topic, payload, qos=qos, pid=i + 1) for i in range(n)))
        for i in range(n):
            if qos:
                pub.wait_for(harness.PUBACK, i + 1, timeout=30)
        pub.ping(timeout=30)
        elapsed = time.monotonic() - start
        got = [sub.recv_publish(timeout=WAIT).payload for _ in range(n)]  # nothing dropped
        self.assertEqual(len(got), n)
        return elapsed

    def test_message_rate_slows_reading_and_drops_nothing(self):
        # 200 at 50/s with a burst of 50: >= 3 s.
        self.start("--message-rate", "50")
        elapsed = self.publish_all(200, b"x", qos=1)
        self.assertGreaterEqual(elapsed, 2.7)
        self.assertLess(elapsed, 20)
        self.assertGreater(
            sample(self.broker.ready_line, 'mqttd_clients_throttled_total{limit="message_rate"}'),
            0)

    def test_without_a_rate_the_same_publisher_is_fast(self):
        self.start()
        self.assertLess(self.publish_all(200, b"x", qos=1), 2.7)

    def test_byte_rate_slows_reading(self):
        # 8 x ~10 kB = ~80 kB at 20 kB/s with a burst of 20 kB: >= 3 s.
        self.start("--byte-rate", "20000")
        elapsed = self.publish_all(8, b"y" * 10000, qos=0)
        self.assertGreaterEqual(elapsed, 2.7)
        self.assertGreater(
            sample(self.broker.ready_line, 'mqttd_clients_throttled_total{limit="byte_rate"}'), 0)


@harness.only_mqttd("mqttd limits")
class ConnectionLimitTest(unittest.TestCase):
    def test_max_connections_closes_the_excess_at_once(self):
        broker = harness.start_broker(["--max-connections", "3"])
        self.addCleanup(broker.stop)
        clients = [harness.raw_connect(broker) for _ in range(3)]
        self.assertTrue(closed_at_once(broker.host, broker.port))
        self.assertGreaterEqual(sample(broker.ready_line, "mqttd_connections_refused_total{"
                                       'listener="mqtt 127.0.0.1:0",reason="max_connections"}'),
                                1)
        clients[0].disconnect()  # a place is free again once the broker closed it
        deadline = time.monotonic() + WAIT
        while closed_at_once(broker.host, broker.port):
            self.assertLess(time.monotonic(), deadline, "no place freed")
        for c in clients[1:]:
            c.ping()
            c.close()

    def test_connection_rate_closes_the_excess_at_once(self):
        broker = harness.start_broker(["--connection-rate", "5"])
        self.addCleanup(broker.stop)
        refused = sum(closed_at_once(broker.host, broker.port) for _ in range(20))
        self.assertGreaterEqual(refused, 10)
        self.assertGreaterEqual(sample(broker.ready_line, "mqttd_connections_refused_total{"
                                       'listener="mqtt 127.0.0.1:0",reason="connection_rate"}'),
                                refused)

    def test_connect_timeout_closes_a_silent_or_slow_connection(self):
        """Slowloris: one connection sends nothing, one sends its CONNECT a byte a second; both
        are closed once --connect-timeout (1 s) passes (the sweep runs every second)."""
        broker = harness.start_broker(["--connect-timeout", "1"])
        self.addCleanup(broker.stop)
        silent = socket.create_connection((broker.host, broker.port), timeout=WAIT)
        slow = socket.create_connection((broker.host, broker.port), timeout=WAIT)
        start = time.monotonic()
        connect = connect_packet(unique("slow"))
        slow_closed = None
        for i in range(8):
            try:
                slow.sendall(connect[i:i + 1])
            except OSError:
                slow_closed = time.monotonic() - start
                break
            slow.settimeout(1.0)
            try:
                if slow.recv(16) == b"":
                    slow_closed = time.monotonic() - start
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                slow_closed = time.monotonic() - start
                break
        self.assertIsNotNone(slow_closed, "a byte-a-second CONNECT kept its connection")
        self.assertLess(slow_closed, 4)
        silent.settimeout(WAIT)
        self.assertEqual(silent.recv(16), b"")
        self.assertLess(time.monotonic() - start, 4)
        silent.close()
        slow.close()


@harness.only_mqttd("mqttd disk watermark")
class DiskWatermarkTest(unittest.TestCase):
    """--min-free-disk 100%: no file system has that much free, so the watermark is exceeded
    from the start (an honest way to test it without filling a disk)."""

    @classmethod
    def setUpClass(cls):
        cls.broker = harness.start_broker(["--min-free-disk", "100%"])

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()

    def test_gauge_and_log(self):
        self.assertEqual(sample(self.broker.ready_line, "mqttd_disk_watermark_exceeded "), 1)
        # The log is read by another thread: it may come after the metric.
        self.assertTrue(self.broker.wait_for_log("disk watermark exceeded"), self.broker.logs)

    def test_new_persistent_session_refused_5_0_quota_exceeded(self):
        c = RawClient5(self.broker)
        ack = c.connect5(unique("p5"), expect_rc=None, clean_start=True,
                         props=[(0x11, 300)])  # Session Expiry Interval
        self.assertEqual(ack.rc, 0x97)
        c.close()

    def test_new_persistent_session_refused_3_1_1_server_unavailable(self):
        c = RawClient(self.broker)
        _, rc = c.connect(unique("p3"), clean=False, expect_rc=None)
        self.assertEqual(rc, 3)
        c.close()

    def test_clean_sessions_and_qos0_go_on(self):
        topic = unique("wm/clean")
        sub = harness.raw_connect(self.broker)
        sub.subscribe([(topic, 1)])
        pub = harness.raw_connect(self.broker)
        pub.publish(topic, b"q0", qos=0)
        pub.publish(topic, b"q1", qos=1)  # only a clean session gets it: nothing to store
        self.assertEqual(sub.recv_publish().payload, b"q0")
        self.assertEqual(sub.recv_publish().payload, b"q1")
        pub.close()
        sub.close()

    def test_stored_qos1_refused_5_0_puback_0x97_and_3_1_1_disconnect(self):
        before = sample(self.broker.ready_line, 'mqttd_messages_dropped_total{reason="quota"}')
        c5 = RawClient5(self.broker)
        c5.connect5(unique("r5"))
        self.assertEqual(c5.publish5(unique("wm/r"), b"kept?", qos=1, retain=True), 0x97)
        c5.close()
        c3 = harness.raw_connect(self.broker)
        c3.send(publish_packet(unique("wm/r"), b"kept?", qos=1, retain=True, pid=1))
        c3.wait_closed()
        after = sample(self.broker.ready_line, 'mqttd_messages_dropped_total{reason="quota"}')
        self.assertEqual(after - before, 2)


@harness.only_mqttd("mqttd disk watermark")
class DiskWatermarkRestartTest(unittest.TestCase):
    def test_a_session_held_before_is_still_served(self):
        from harness_persist import Node  # persistence/: restarts on one data directory
        node = Node()
        node.start()
        self.addCleanup(node.cleanup)
        topic, cid = unique("wm/held"), unique("held")
        sub = RawClient(node.host, node.port)
        sub.connect(cid, clean=False)
        sub.subscribe([(topic, 1)])
        sub.disconnect()
        node.stop()
        node.extra_args += ["--min-free-disk", "100%"]
        node.start()
        sub = RawClient(node.host, node.port)
        self.addCleanup(sub.close)
        sp, rc = sub.connect(cid, clean=False)  # resumed, not new: let in
        self.assertEqual((sp, rc), (1, 0))
        pub = RawClient(node.host, node.port)
        pub.connect(unique("pub"))
        pub.send(publish_packet(topic, b"stored", qos=1, pid=1))
        pub.wait_closed()  # 3.1.1: a QoS 1 message to be stored is refused by closing
        pub = RawClient(node.host, node.port)
        pub.connect(unique("pub"))
        pub.publish(topic, b"q0", qos=0)  # QoS 0 to a connected session goes on
        self.assertEqual(sub.recv_publish().payload, b"q0")
        pub.close()


if __name__ == "__main__":
    unittest.main()
