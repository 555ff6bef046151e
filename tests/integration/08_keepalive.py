#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""PINGREQ/PINGRESP and keep alive enforced at 1.5 x the client's value, with the will
published on the timeout.

The sleeps here pace the client's own traffic (that is what is under test), they do not
synchronise with the broker."""

import time

import harness
from harness import BrokerTestCase, PINGREQ_BYTES, PINGRESP


class KeepAliveTest(BrokerTestCase):

    def test_pingreq_answered_with_pingresp_MQTT_3_12_4_1(self):
        c = self.raw()
        c.send(PINGREQ_BYTES)
        p = c.expect(PINGRESP)
        self.assertEqual((p.flags, p.body), (0, b""))

    def test_silent_client_closed_after_1_5_keepalive_and_will_published_MQTT_3_1_2_24(self):
        t = self.topic()
        w = self.raw()
        w.subscribe([(t, 1)])
        c = harness.RawClient(self.broker)
        self._cleanup_clients.append(c)
        start = time.monotonic()
        c.connect(keepalive=1, will=dict(topic=t, payload=b"timed-out", qos=1))
        c.wait_closed(timeout=20)
        elapsed = time.monotonic() - start
        # 1.5 x 1 s: not before (a little slack for timer granularity), and not long after
        # (generous for a loaded machine). Mosquitto 2.0.11 checks keep alives only every
        # ~6 s, so it gets a looser upper bound.
        self.assertGreaterEqual(elapsed, 1.35, "closed too early")
        self.assertLess(elapsed, 12.0 if harness.is_mosquitto() else 4.5, "closed too late")
        self.assertEqual(w.recv_publish().payload, b"timed-out")  # [MQTT-3.1.2-8]

    def test_not_closed_between_1x_and_1_5x_keepalive_MQTT_3_1_2_24(self):
        # Keep alive 3 s: a PINGREQ at 3.6 s (past 1x, before 1.5x = 4.5 s) is still
        # answered.
        c = self.raw(keepalive=3)
        time.sleep(3.6)
        c.ping()

    def test_regular_pings_keep_connection_open_MQTT_3_1_2_23(self):
        c = self.raw(keepalive=1)
        for _ in range(4):  # 2.8 s, well past 1.5 x 1 s
            time.sleep(0.7)
            c.ping()

    def test_publishes_count_as_activity_MQTT_3_1_2_24(self):
        t = self.topic()
        c = self.raw(keepalive=1)
        for i in range(4):
            time.sleep(0.7)
            c.publish(t, b"tick", qos=1, pid=i + 1)
        c.ping()

    def test_keepalive_zero_not_enforced(self):
        # Keep alive 0 turns the mechanism off (3.1.2.10). Checked against a 1 s client that
        # is closed meanwhile, as the positive barrier.
        off = self.raw(keepalive=0)
        on = self.raw(keepalive=1)
        on.wait_closed(timeout=20)
        off.ping()


if __name__ == "__main__":
    harness.main()
