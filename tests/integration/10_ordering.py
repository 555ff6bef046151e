#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Message order per topic and publisher is kept for each subscriber, at QoS 0, 1 and 2,
over ~1000 messages ([MQTT-4.6.0-5], [MQTT-4.6.0-6])."""

import harness
from harness import BrokerTestCase

N = 1000


class OrderingTest(BrokerTestCase):

    def run_order(self, qos, publishers=1, subscribers=2, n=N):
        t = self.topic()
        subs = []
        for _ in range(subscribers):
            s = self.paho(max_inflight=100)
            self.assertEqual(s.subscribe(t, qos), [qos])
            subs.append(s)
        pubs = [self.paho(max_inflight=20) for _ in range(publishers)]
        last = []
        for i in range(n):
            for k, p in enumerate(pubs):
                info = p.publish(t, b"%d:%06d" % (k, i), qos=qos, wait=False)
                if i == n - 1:
                    last.append(info)
        for info in last:
            info.wait_for_publish(60)
            self.assertTrue(info.is_published())
        for s in subs:
            seen = {k: [] for k in range(publishers)}
            for _ in range(n * publishers):
                m = s.recv(timeout=30)
                k, i = m.payload.split(b":")
                seen[int(k)].append(int(i))
                self.assertEqual(m.qos, qos)
            for k in range(publishers):
                self.assertEqual(seen[k], list(range(n)), "publisher %d out of order" % k)
            s.expect_none(0.2)

    def test_order_qos0_MQTT_4_6_0_6(self):
        self.run_order(0)

    def test_order_qos1_MQTT_4_6_0_6(self):
        self.run_order(1)

    def test_order_qos2_MQTT_4_6_0_6(self):
        self.run_order(2)

    def test_order_per_publisher_two_publishers_qos1_MQTT_4_6_0_6(self):
        self.run_order(1, publishers=2, subscribers=1, n=N // 2)


if __name__ == "__main__":
    harness.main()
