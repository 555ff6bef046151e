#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 Will Delay Interval (3.1.3.2.2) and will handling on DISCONNECT (3.14)."""

import time

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, PacketTypes, main, paho_props, sub_options, unique,
                      SESSION_EXPIRY_INTERVAL, WILL_DELAY_INTERVAL, USER_PROPERTY,
                      CONTENT_TYPE, RC_DISCONNECT_WITH_WILL)


class WillDelay(Broker5TestCase):

    def _watch(self, topic):
        w = self.raw5()
        w.subscribe5([(topic, sub_options(qos=1))])
        return w

    def _with_will(self, topic, delay, expiry, cid=None, payload=None, will_props=()):
        cid = cid or unique("will")
        props = [(SESSION_EXPIRY_INTERVAL, expiry)] if expiry is not None else []
        wprops = ([(WILL_DELAY_INTERVAL, delay)] if delay is not None else []) + list(will_props)
        will = dict(topic=topic, payload=payload or cid.encode(), qos=1, props=wprops)
        return self.raw5(cid, props=props, will=will), cid

    def test_will_published_after_delay_MQTT_3_1_3_9(self):
        """Will Delay 2, session expiry 60, abnormal close: the will is not published at once
        but about 2 s later (3.1.3.2.2)."""
        wt = self.topic()
        w = self._watch(wt)
        c, cid = self._with_will(wt, 2, 60)
        t0 = time.monotonic()
        c.close()
        m = w.recv_pub(timeout=20)
        self.assertEqual(m.payload, cid.encode())
        self.assertGreaterEqual(time.monotonic() - t0, 1.5, "will published before its delay")

    def test_will_without_delay_is_immediate(self):
        """Control: no Will Delay Interval -> published on the abnormal close (3.1.2.5)."""
        wt = self.topic()
        w = self._watch(wt)
        c, cid = self._with_will(wt, None, 60)
        t0 = time.monotonic()
        c.close()
        self.assertEqual(w.recv_pub().payload, cid.encode())
        self.assertLess(time.monotonic() - t0, 1.4)

    def test_will_cancelled_when_session_resumed_in_time_MQTT_3_1_3_9(self):
        """Will Delay 3: the client reconnects (Clean Start 0) within it, so the will is not
        sent [MQTT-3.1.3-9]. Barrier: a probe client with Will Delay 4 closed at the same
        time does get its will published."""
        wt = self.topic()
        w = self._watch(wt)
        c, cid = self._with_will(wt, 3, 60, payload=b"cancelled")
        probe, _ = self._with_will(wt, 4, 60, payload=b"probe")
        c.close()
        probe.close()
        again = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 60)])
        self.assertEqual(again.connack.session_present, 1)
        self.assertEqual(w.recv_pub(timeout=20).payload, b"probe")
        w.expect_no_publish(1.2)  # different worker sweeps run up to 1 s apart

    def test_will_published_at_session_end_if_sooner_MQTT_3_1_3_9(self):
        """Will Delay 3600, Session Expiry 1: the will is published when the session ends
        (about 1 s), whichever comes first (3.1.3.2.2)."""
        wt = self.topic()
        w = self._watch(wt)
        c, cid = self._with_will(wt, 3600, 1)
        c.close()
        self.assertEqual(w.recv_pub(timeout=20).payload, cid.encode())

    def test_will_delay_with_session_ending_at_close(self):
        """Will Delay 60 and no session expiry: the session ends with the connection, so the
        will goes at once (3.1.3.2.2)."""
        wt = self.topic()
        w = self._watch(wt)
        c, cid = self._with_will(wt, 60, None)
        c.close()
        self.assertEqual(w.recv_pub(timeout=5).payload, cid.encode())

    def test_normal_disconnect_discards_will_MQTT_3_14_4_3(self):
        """DISCONNECT 0x00 discards the will [MQTT-3.14.4-3]; DISCONNECT 0x04 (Disconnect with
        Will Message) publishes it (3.14.2.1)."""
        wt = self.topic()
        w = self._watch(wt)
        c1, _ = self._with_will(wt, None, None, payload=b"dropped")
        c1.disconnect5(0)
        c2, _ = self._with_will(wt, None, None, payload=b"sent")
        c2.disconnect5(RC_DISCONNECT_WITH_WILL)
        self.assertEqual(w.recv_pub().payload, b"sent")
        w.expect_no_publish()

    def test_will_properties_passed_through_3_1_3_2(self):
        """Will properties (Content Type, User Properties in order) reach the subscriber; the
        Will Delay Interval itself is not forwarded (it is not a PUBLISH property)."""
        wt = self.topic()
        w = self._watch(wt)
        ups = [("b", "1"), ("a", "2"), ("b", "3")]
        c, cid = self._with_will(wt, None, None, will_props=[(CONTENT_TYPE, "text/x")] +
                                 [(USER_PROPERTY, kv) for kv in ups])
        c.close()
        m = w.recv_pub()
        self.assertEqual(m.props.get(CONTENT_TYPE), "text/x")
        self.assertEqual(m.user_props, ups)
        self.assertFalse(m.props.has(WILL_DELAY_INTERVAL))

    def test_paho_will_delay(self):
        """paho MQTTv5 will with WillDelayInterval 2 and session expiry 60: delayed."""
        wt = self.topic()
        w = self._watch(wt)
        will = dict(topic=wt, payload=b"paho-will", qos=1,
                    properties=paho_props(PacketTypes.WILLMESSAGE, WillDelayInterval=2))
        c = self.paho5(will=will, connect_props=paho_props(PacketTypes.CONNECT,
                                                           SessionExpiryInterval=60))
        t0 = time.monotonic()
        c.drop()
        self.assertEqual(w.recv_pub(timeout=20).payload, b"paho-will")
        self.assertGreaterEqual(time.monotonic() - t0, 1.5)


if __name__ == "__main__":
    main()
