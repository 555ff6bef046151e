#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Will messages: published on abnormal disconnect, not after DISCONNECT, with the will's QoS
and retain flag. (Keep-alive timeout: 08_keepalive.py; protocol errors: 07_bad_input.py;
takeover: 06_sessions.py.)"""

import paho.mqtt.client as paho

import harness
from harness import BrokerTestCase, DISCONNECT_BYTES


class WillTest(BrokerTestCase):

    def watcher(self, t, qos=2):
        w = self.raw()
        w.subscribe([(t, qos)])
        return w

    def test_will_published_on_socket_close_MQTT_3_1_2_8(self):
        t = self.topic()
        w = self.watcher(t)
        c = self.raw(will=dict(topic=t, payload=b"gone", qos=0))
        c.close()
        p = w.recv_publish()
        self.assertEqual((p.topic, p.payload), (t, b"gone"))

    def test_paho_will_on_abnormal_disconnect_MQTT_3_1_2_8(self):
        t = self.topic()
        w = self.paho()
        w.subscribe(t, 2)
        c = self.paho(will=dict(topic=t, payload=b"paho-will", qos=2))
        c.drop()
        m = w.recv()
        self.assertEqual((m.payload, m.qos), (b"paho-will", 2))

    def test_no_will_after_disconnect_MQTT_3_1_2_10_MQTT_3_14_4_3(self):
        t = self.topic()
        w = self.watcher(t)
        c = self.raw(will=dict(topic=t, payload=b"must-not-appear", qos=1))
        c.send(DISCONNECT_BYTES)
        c.wait_closed()
        self.raw().publish(t, b"barrier", qos=1)
        self.assertEqual(w.recv_publish().payload, b"barrier")
        w.expect_none()

    def test_paho_no_will_after_disconnect_MQTT_3_14_4_3(self):
        t = self.topic()
        w = self.paho()
        w.subscribe(t, 1)
        c = self.paho(will=dict(topic=t, payload=b"must-not-appear", qos=1))
        c.disconnect()
        self.assertTrue(c.disconnected.wait(harness.WAIT))
        self.paho().publish(t, b"barrier", qos=1)
        self.assertEqual(w.recv().payload, b"barrier")
        w.expect_none()

    def test_will_qos_honoured_MQTT_3_1_2_9(self):
        t = self.topic()
        w = self.watcher(t, qos=2)
        for q in (0, 1, 2):
            with self.subTest(will_qos=q):
                c = self.raw(will=dict(topic=t, payload=b"q%d" % q, qos=q))
                c.close()
                p = w.recv_publish()
                self.assertEqual((p.payload, p.qos), (b"q%d" % q, q))

    def test_will_retain_1_published_retained_MQTT_3_1_2_17(self):
        t = self.topic()
        w = self.watcher(t)
        c = self.raw(will=dict(topic=t, payload=b"last", qos=1, retain=True))
        c.close()
        p = w.recv_publish()
        self.assertEqual((p.payload, p.retain), (b"last", False))  # live forward [MQTT-3.3.1-9]
        late = self.raw()
        late.subscribe([(t, 1)])
        p = late.recv_publish()
        self.assertEqual((p.payload, p.qos, p.retain), (b"last", 1, True))

    def test_will_retain_0_not_retained_MQTT_3_1_2_16(self):
        t = self.topic()
        w = self.watcher(t + "/w")
        c = self.raw(will=dict(topic=t + "/w", payload=b"transient", qos=1, retain=False))
        c.close()
        self.assertEqual(w.recv_publish().payload, b"transient")
        self.raw().publish(t + "/r", b"barrier", qos=1, retain=True)
        late = self.raw()
        late.subscribe([(t + "/+", 1)])
        self.assertEqual(late.recv_publish().payload, b"barrier")
        late.expect_none()

    def test_mqtt31_will_published(self):
        t = self.topic()
        w = self.watcher(t)
        c = self.raw(proto="MQIsdp", level=3, will=dict(topic=t, payload=b"v31-will", qos=1))
        c.close()
        self.assertEqual(w.recv_publish().payload, b"v31-will")

    def test_paho_mqtt31_will_retained(self):
        t = self.topic()
        c = self.paho(protocol=paho.MQTTv31,
                      will=dict(topic=t, payload=b"v31-retained", qos=1, retain=True))
        w = self.paho()
        w.subscribe(t + "/ready", 1)
        c.publish(t + "/ready", b"ok", qos=1)
        self.assertEqual(w.recv().payload, b"ok")
        c.drop()
        w.subscribe(t, 1)
        # The will may race the subscribe: it arrives either live or as retained.
        m = w.recv()
        self.assertEqual(m.payload, b"v31-retained")


if __name__ == "__main__":
    harness.main()
