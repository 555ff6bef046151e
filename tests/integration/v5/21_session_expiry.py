#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 Clean Start and Session Expiry Interval (3.1.2.4, 3.1.2.11.2, 3.14.2.2.2).

Session end is observed through a Will Message with a long Will Delay Interval: the server
publishes it when the session ends, whichever comes first [MQTT-3.1.3-9]. That gives a positive
event to wait for instead of sleeping."""

import time

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, PacketTypes, paho_props, main, sub_options,
                      SESSION_EXPIRY_INTERVAL, WILL_DELAY_INTERVAL, RC_PROTOCOL_ERROR, unique)

import harness  # noqa: E402 (on the path harness5 sets)


class SessionExpiry(Broker5TestCase):

    def _persistent(self, cid, expiry, clean_start=True, will_topic=None, **kw):
        will = None
        if will_topic is not None:
            will = dict(topic=will_topic, payload=b"ended:" + cid.encode(), qos=1,
                        props=[(WILL_DELAY_INTERVAL, 3600)])
        props = [] if expiry is None else [(SESSION_EXPIRY_INTERVAL, expiry)]
        return self.raw5(cid, clean_start=clean_start, props=props, will=will, **kw)

    def test_session_kept_for_interval_MQTT_3_1_2_23(self):
        """Session Expiry Interval 60: after the connection closes the session (subscription,
        queued QoS 1 message) is kept [MQTT-3.1.2-23]; Clean Start 0 resumes it with Session
        Present 1 [MQTT-3.1.2-5], [MQTT-3.2.2-3]."""
        cid, topic = unique("keep"), self.topic()
        c = self._persistent(cid, 60)
        self.assertEqual(c.connack.session_present, 0)  # new session [MQTT-3.1.2-6]
        c.subscribe5([(topic, sub_options(qos=1))])
        c.disconnect5()
        self.raw5().publish5(topic, b"while-away", qos=1)
        c2 = self._persistent(cid, 60, clean_start=False)
        self.assertEqual(c2.connack.session_present, 1)
        self.assertEqual(c2.recv_pub().payload, b"while-away")

    def test_session_expires_after_interval_MQTT_4_1_0_2(self):
        """Session Expiry Interval 2: the session ends about 2 s after the connection closes
        [MQTT-3.1.2-23], [MQTT-4.1.0-2]; its (3600 s delayed) will fires then, not before, and a
        Clean Start 0 reconnect finds no session (Session Present 0) [MQTT-3.2.2-3]."""
        cid, topic, wt = unique("exp"), self.topic(), self.topic("/will")
        watcher = self.raw5()
        watcher.subscribe5([(wt, sub_options(qos=1))])
        c = self._persistent(cid, 2, will_topic=wt)
        c.subscribe5([(topic, sub_options(qos=1))])
        t0 = time.monotonic()
        c.close()  # abnormal: the will stays pending behind its delay
        self.raw5().publish5(topic, b"queued", qos=1)
        will = watcher.recv_pub(timeout=20)
        elapsed = time.monotonic() - t0
        self.assertEqual(will.payload, b"ended:" + cid.encode())
        self.assertGreaterEqual(elapsed, 1.5, "session ended before its expiry interval")
        c2 = self._persistent(cid, 60, clean_start=False)
        self.assertEqual(c2.connack.session_present, 0)
        c2.expect_no_publish()  # the queued message went with the session

    def test_session_expiry_absent_means_zero_MQTT_3_1_2_23(self):
        """No Session Expiry Interval: the session ends with the connection; Clean Start 0
        then gets Session Present 0 and the old subscription is gone."""
        cid, topic = unique("zero"), self.topic()
        c = self._persistent(cid, None)
        c.subscribe5([(topic, sub_options(qos=1))])
        c.disconnect5()
        c2 = self._persistent(cid, 60, clean_start=False)
        self.assertEqual(c2.connack.session_present, 0)
        self.raw5().publish5(topic, b"x", qos=1)
        c2.expect_no_publish()

    def test_never_expires_0xFFFFFFFF_MQTT_3_1_2_23(self):
        """0xFFFFFFFF: the session does not expire. Barrier: a probe session with interval 2
        closed at the same moment has ended (its will arrived) and a further sweep has run;
        the 0xFFFFFFFF session is still there with its queued message."""
        cid, topic, wt = unique("forever"), self.topic(), self.topic("/will")
        watcher = self.raw5()
        watcher.subscribe5([(wt, sub_options(qos=1))])
        c = self._persistent(cid, 0xFFFFFFFF)
        c.subscribe5([(topic, sub_options(qos=1))])
        probe = self._persistent(unique("probe"), 2, will_topic=wt)
        c.close()
        probe.close()
        self.raw5().publish5(topic, b"kept", qos=1)
        watcher.recv_pub(timeout=20)
        # one more probe so that every worker's 1 s sweep has run after the first expiry
        probe2 = self._persistent(unique("probe"), 1, will_topic=wt)
        probe2.close()
        watcher.recv_pub(timeout=20)
        c2 = self._persistent(cid, 0xFFFFFFFF, clean_start=False)
        self.assertEqual(c2.connack.session_present, 1)
        self.assertEqual(c2.recv_pub().payload, b"kept")

    def test_clean_start_discards_session_MQTT_3_1_2_4(self):
        """Clean Start 1 discards the existing session [MQTT-3.1.2-4]: Session Present 0
        [MQTT-3.2.2-2] and the old subscription no longer delivers."""
        cid, topic = unique("clean"), self.topic()
        c = self._persistent(cid, 60)
        c.subscribe5([(topic, sub_options(qos=1))])
        c.disconnect5()
        c2 = self._persistent(cid, 60, clean_start=True)
        self.assertEqual(c2.connack.session_present, 0)
        pub = self.raw5()
        pub.publish5(topic, b"old-sub", qos=1)
        barrier = self.topic("/b")
        c2.subscribe5([(barrier, sub_options(qos=1))])
        pub.publish5(barrier, b"barrier", qos=1)
        self.assertEqual(c2.recv_pub().payload, b"barrier")
        c2.expect_no_publish()

    def test_disconnect_sets_expiry_to_zero_3_14_2_2_2(self):
        """DISCONNECT with Session Expiry Interval 0 after CONNECT had 60: the session ends
        now (3.14.2.2.2)."""
        cid, topic = unique("dz"), self.topic()
        c = self._persistent(cid, 60)
        c.subscribe5([(topic, sub_options(qos=1))])
        # Two TCP connections are not ordered: the next CONNECT goes once the broker has closed
        # this one, i.e. read its DISCONNECT (else it may take the session over first).
        c.send(disconnect5_packet(0, [(SESSION_EXPIRY_INTERVAL, 0)]))
        c.wait_closed()
        c2 = self._persistent(cid, 60, clean_start=False)
        self.assertEqual(c2.connack.session_present, 0)

    def test_disconnect_extends_expiry_3_14_2_2_2(self):
        """CONNECT with interval 1, DISCONNECT with 3600: the session outlives a probe
        session of interval 2 closed at the same time (3.14.2.2.2)."""
        cid, topic, wt = unique("dx"), self.topic(), self.topic("/will")
        watcher = self.raw5()
        watcher.subscribe5([(wt, sub_options(qos=1))])
        c = self._persistent(cid, 1)
        c.subscribe5([(topic, sub_options(qos=1))])
        probe = self._persistent(unique("probe"), 2, will_topic=wt)
        c.disconnect5(props=[(SESSION_EXPIRY_INTERVAL, 3600)])
        probe.close()
        self.raw5().publish5(topic, b"kept", qos=1)
        watcher.recv_pub(timeout=20)
        c2 = self._persistent(cid, 60, clean_start=False)
        self.assertEqual(c2.connack.session_present, 1)
        self.assertEqual(c2.recv_pub().payload, b"kept")

    def test_disconnect_nonzero_after_zero_is_protocol_error_3_14_2_2_2(self):
        """CONNECT had Session Expiry 0 (absent) and DISCONNECT sets 30: Protocol Error, the
        server answers DISCONNECT 0x82 (3.14.2.2.2, [MQTT-4.13.1-1]) and keeps no session."""
        cid = unique("dbad")
        c = self._persistent(cid, None)
        c.send(disconnect5_packet(0, [(SESSION_EXPIRY_INTERVAL, 30)]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)
        c2 = self._persistent(cid, 60, clean_start=False)
        self.assertEqual(c2.connack.session_present, 0)

    def test_paho_resume_session(self):
        """paho MQTTv5: clean_start=False + SessionExpiryInterval resumes the session and gets
        the QoS 1 message published while it was away [MQTT-3.1.2-5]."""
        cid, topic = unique("p5"), self.topic()
        props = paho_props(PacketTypes.CONNECT, SessionExpiryInterval=120)
        c = self.paho5(client_id=cid, clean_start=True, connect_props=props, connect=False)
        self.assertEqual(c.connect()[0], 0)
        c.subscribe(topic, qos=1)
        c.disconnect()
        self.paho5().publish(topic, b"p5-away", qos=1)
        c2 = self.paho5(client_id=cid, clean_start=False, connect_props=props, connect=False)
        sp, rc, _ = c2.connect()
        self.assertEqual(sp, 1)
        m = c2.recv()
        self.assertEqual((m.topic, m.payload, m.qos), (topic, b"p5-away", 1))


@harness.skip_under_mosquitto("mqttd's --max-session-expiry")
class SessionExpiryCapped(Broker5TestCase):
    """--max-session-expiry 2: abandoned sessions do not stay on disk for ever (issue 14)."""
    BROKER_ARGS = ("--max-session-expiry", "2")

    def test_interval_above_the_maximum_is_capped_and_told_in_connack(self):
        """5.0 section 3.2.2.3.2: the server may use another Session Expiry Interval than the
        client's, and says so in CONNACK."""
        c = self.raw5(unique("cap"), props=[(SESSION_EXPIRY_INTERVAL, 0xFFFFFFFF)])
        self.assertEqual(c.connack.props.get(SESSION_EXPIRY_INTERVAL), 2, c.connack)
        within = self.raw5(unique("cap"), props=[(SESSION_EXPIRY_INTERVAL, 1)])
        self.assertFalse(within.connack.props.has(SESSION_EXPIRY_INTERVAL), within.connack)

    def test_abandoned_3_1_1_session_expires(self):
        """A 3.1.1 Clean Session 0 session ends --max-session-expiry after its client left; a
        reconnect before that resumes it (Session Present 1 [MQTT-3.2.2-2]), one after finds
        none (Session Present 0 [MQTT-3.2.2-3])."""
        cid = unique("abandon")
        c = self.raw(cid, clean=False)
        c.subscribe([(self.topic(), 1)])
        c.disconnect()
        again = harness.RawClient(self.broker)
        self._cleanup_clients.append(again)
        self.assertEqual(again.connect(cid, clean=False)[0], 1, "resumed within 2 s")
        again.disconnect()
        # Any reconnect would resume it and restart the clock: wait past the expiry (2 s) and the
        # sweep that ends it (every second), with a margin, then look once.
        time.sleep(4.5)
        later = harness.RawClient(self.broker)
        self._cleanup_clients.append(later)
        self.assertEqual(later.connect(cid, clean=False)[0], 0, "the session did not expire")


if __name__ == "__main__":
    main()
