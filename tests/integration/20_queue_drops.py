#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Queue drop policy and drop counts (issue 14, "Four defaults to mend"): with a tiny queue
(--max-queued-messages 3) a persistent session's full queue drops the newest message
(--queue-full-policy drop_newest, the default) or the oldest queued ones (drop_oldest), for
paho 3.1.1 and 5.0 subscribers; each drop is counted in
mqttd_messages_dropped_total{reason="queue_full"} on /metrics, and the first one is logged with
the client id and the reason. Online, a QoS 0 subscriber that never reads loses QoS 0 messages
above --max-outbound-buffer (reason outbound_buffer). mqttd only."""

import socket
import time
import unittest
import urllib.request

import harness
from harness import WAIT, PahoClient, RawClient, paho, unique

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "v5"))
from harness5 import Paho5Client, PacketTypes, paho_props  # noqa: E402

N = 8  # messages published while the subscriber is away; the queue holds 3


def http_address(broker):
    for word in broker.ready_line.split():
        if word.startswith("http="):
            return word[len("http="):]
    raise AssertionError("no http= on the ready line: %r" % broker.ready_line)


def dropped(broker, reason):
    """mqttd_messages_dropped_total{reason=...} from /metrics."""
    with urllib.request.urlopen("http://%s/metrics" % http_address(broker), timeout=WAIT) as r:
        text = r.read().decode()
    key = 'mqttd_messages_dropped_total{reason="%s"} ' % reason
    for line in text.splitlines():
        if line.startswith(key):
            return float(line[len(key):])
    raise AssertionError("no %s in /metrics:\n%s" % (key, text))


def drain(client, limit):
    """Payloads received until the broker goes quiet (at most `limit` + 1)."""
    got = []
    while len(got) <= limit:
        try:
            got.append(client.recv(timeout=harness.QUIET if got else WAIT).payload)
        except AssertionError:
            break
    return got


@harness.only_mqttd("mqttd options and /metrics")
class QueueDropTest(unittest.TestCase):
    def start(self, policy):
        args = ["--workers", "1", "--max-queued-messages", "3"]
        if policy is not None:
            args += ["--queue-full-policy", policy]
        self.broker = harness.start_broker(args)
        self.addCleanup(self.broker.stop)

    def paho311(self, cid):
        return PahoClient(self.broker, client_id=cid, clean_session=False)

    def paho5(self, cid):
        props = paho_props(PacketTypes.CONNECT, SessionExpiryInterval=300)
        return Paho5Client(self.broker, client_id=cid, clean_start=False, connect_props=props)

    def run_offline_queue(self, make_client):
        """Subscribe QoS 1, go away, N QoS 1 publishes, come back: what arrives."""
        topic, cid = unique("qd/t"), unique("qd-sub")
        sub = make_client(cid)
        sub.connect()
        sub.subscribe(topic, 1)
        sub.disconnect()
        pub = PahoClient(self.broker)
        pub.connect()
        for i in range(N):
            pub.publish(topic, b"m%d" % i, qos=1)  # PUBACK once stored for the session
        pub.disconnect()
        back = make_client(cid)
        self.addCleanup(back.disconnect)
        back.connect()
        return drain(back, N)

    def check(self, make_client, policy, expected):
        self.start(policy)
        self.assertEqual(self.run_offline_queue(make_client), expected)
        self.assertEqual(dropped(self.broker, "queue_full"), N - 3)
        self.assertIn("message dropped (queue_full", self.broker.logs)

    def test_drop_newest_is_the_default_v311(self):
        self.check(self.paho311, None, [b"m0", b"m1", b"m2"])

    def test_drop_newest_v5(self):
        self.check(self.paho5, "drop_newest", [b"m0", b"m1", b"m2"])

    def test_drop_oldest_v311(self):
        self.check(self.paho311, "drop_oldest", [b"m5", b"m6", b"m7"])

    def test_drop_oldest_v5(self):
        self.check(self.paho5, "drop_oldest", [b"m5", b"m6", b"m7"])

    def test_first_drop_logged_once_a_minute_per_session(self):
        self.start("drop_oldest")
        self.run_offline_queue(self.paho311)
        self.assertEqual(self.broker.logs.count("message dropped (queue_full"), 1,
                         self.broker.log_tail())

    def test_qos0_beyond_the_outbound_buffer_counted(self):
        """A subscriber that never reads its socket: QoS 0 to it is dropped once the unwritten
        output passes --max-outbound-buffer (reason outbound_buffer), and the node goes on."""
        self.broker = harness.start_broker(["--workers", "1", "--max-outbound-buffer", "4096"])
        self.addCleanup(self.broker.stop)
        topic = unique("qd/slow")
        slow = RawClient(self.broker)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(unique("slow"))
        slow.subscribe([(topic, 0)])
        pub = RawClient(self.broker)
        pub.connect(unique("pub"))
        payload = b"x" * 16384
        deadline = time.monotonic() + WAIT
        while dropped(self.broker, "outbound_buffer") == 0 and time.monotonic() < deadline:
            for _ in range(50):
                pub.publish(topic, payload, qos=0)
            pub.ping()  # barrier: the 50 were routed
        self.assertGreater(dropped(self.broker, "outbound_buffer"), 0)
        pub.ping()
        slow.close()
        pub.close()


if __name__ == "__main__":
    unittest.main()
