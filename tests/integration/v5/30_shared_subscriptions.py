#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Shared subscriptions (4.8.2): $share/{group}/{filter} for 5.0 and 3.1.1 clients, $queue/
{filter}; one member per group per message; redelivery of unacknowledged QoS 1 messages to
another member; offline members skipped; no retained messages; invalid share names."""

from harness5 import *  # noqa: F401,F403
from harness5 import (Broker5TestCase, Collector, PacketTypes, SubscribeOptions, main, paho,
                      paho_props, sub_options, subscribe5_packet, unique, wait_until,
                      PUBACK, SESSION_EXPIRY_INTERVAL, RC_PROTOCOL_ERROR,
                      RC_TOPIC_FILTER_INVALID)


class SharedSubscriptions(Broker5TestCase):

    def _members(self, filt, n, qos=1, v311=False):
        out = {}
        for i in range(n):
            if v311:
                c = self.raw()
                self.assertEqual(c.subscribe([(filt, qos)]), [qos])
            else:
                c = self.raw5()
                self.assertEqual(c.subscribe5([(filt, sub_options(qos=qos))]), [qos])
            out["m%d" % i] = c
        return out

    def _publish(self, topic, n, qos=1, prefix=b""):
        pub = self.raw5()
        for i in range(n):
            pub.publish5(topic, prefix + b"%d" % i, qos=qos, pid=(i % 60000) + 1)
        return pub

    def _assert_each_once(self, col, n, prefix=b""):
        col.wait_total(n)
        col.quiet(n)
        payloads = sorted(p for v in col.got.values() for _, p in v)
        self.assertEqual(payloads, sorted(prefix + b"%d" % i for i in range(n)))

    def test_share_v5_each_message_to_one_member_4_8_2(self):
        """Three 5.0 members of $share/g/T: 30 QoS 1 messages, each to exactly one member
        (4.8.2), all members used (round robin by default: 10 each)."""
        t = self.topic()
        col = Collector(self._members("$share/g/" + t, 3))
        self._publish(t, 30)
        self._assert_each_once(col, 30)
        col.stop()
        self.assertEqual(sorted(col.counts().values()), [10, 10, 10], col.counts())

    def test_share_v311_members_4_8_2(self):
        """3.1.1 clients use $share/{group}/{filter} too: SUBACK granted, each message once."""
        t = self.topic()
        col = Collector(self._members("$share/old/" + t, 2, v311=True))
        self._publish(t, 20)
        self._assert_each_once(col, 20)
        col.stop()
        self.assertEqual(sorted(col.counts().values()), [10, 10])

    def test_share_mixed_versions_and_wildcard_filter(self):
        """A group of one 5.0 and one 3.1.1 member on a wildcard filter $share/mix/T/+."""
        t = self.topic()
        members = self._members("$share/mix/%s/+" % t, 1)
        members.update({"old": self._members("$share/mix/%s/+" % t, 1, v311=True)["m0"]})
        col = Collector(members)
        pub = self.raw5()
        for i in range(10):
            pub.publish5("%s/%d" % (t, i % 3), b"%d" % i, qos=1, pid=i + 1)
        self._assert_each_once(col, 10)
        col.stop()
        self.assertEqual(sorted(col.counts().values()), [5, 5])

    def test_queue_prefix_one_implicit_group(self):
        """$queue/{filter}: one implicit group, each message to one member."""
        t = self.topic()
        col = Collector(self._members("$queue/" + t, 3))
        self._publish(t, 30)
        self._assert_each_once(col, 30)
        col.stop()
        self.assertEqual(sorted(col.counts().values()), [10, 10, 10])

    def test_two_groups_each_get_every_message_4_8_2(self):
        """Groups a and b on the same filter, plus a plain subscriber: each group gets every
        message once, the plain subscriber gets every message (4.8.2)."""
        t = self.topic()
        ga = self._members("$share/a/" + t, 2)
        gb = self._members("$share/b/" + t, 2)
        plain = self.raw5()
        plain.subscribe5([(t, sub_options(qos=1))])
        col_a, col_b = Collector(ga), Collector(gb)
        col_p = Collector({"plain": plain})
        self._publish(t, 20)
        self._assert_each_once(col_a, 20)
        self._assert_each_once(col_b, 20)
        self._assert_each_once(col_p, 20)
        for c in (col_a, col_b, col_p):
            c.stop()

    def test_subscription_identifier_on_shared_subscription(self):
        """A Subscription Identifier given with a shared subscription comes with the messages
        delivered through it (3.8.2.1.2)."""
        t = self.topic()
        c = self.raw5()
        c.subscribe5([("$share/sid/" + t, sub_options(qos=1))], sub_id=77)
        self.raw5().publish5(t, b"x", qos=1)
        self.assertEqual(c.recv_pub().sub_ids, [77])

    def test_unacked_qos1_goes_to_another_member_4_8_2(self):
        """A QoS 1 message in flight to a member that closes without PUBACK goes to another
        member (4.8.2: "MAY attempt to send the message to another Client as soon as it loses
        its connection to the first Client"; the issue requires it)."""
        t = self.topic()
        silent = self.raw5()
        silent.subscribe5([("$share/r/" + t, sub_options(qos=1))])
        good = self.raw5()
        good.subscribe5([("$share/r/" + t, sub_options(qos=1))])
        col = Collector({"good": good})
        self._publish(t, 4)
        held = [silent.recv_pub(ack=False).payload for _ in range(2)]
        col.wait_total(2)
        silent.close()
        col.wait_total(4)
        col.quiet(4)
        col.stop()
        got = [p for _, p in col.got["good"]]
        self.assertEqual(sorted(got), [b"0", b"1", b"2", b"3"])
        self.assertEqual(sorted(got[2:]), sorted(held))

    def test_unacked_qos1_of_persistent_member_goes_to_another_member_4_8_2(self):
        """The same for a member whose session outlives the connection (expiry 300): its
        in-flight message goes to the online member, and it does not get it again on resume."""
        t, cid = self.topic(), unique("pers")
        silent = self.raw5(cid, props=[(SESSION_EXPIRY_INTERVAL, 300)])
        silent.subscribe5([("$share/rp/" + t, sub_options(qos=1))])
        good = self.raw5()
        good.subscribe5([("$share/rp/" + t, sub_options(qos=1))])
        col = Collector({"good": good})
        self._publish(t, 2)
        held = silent.recv_pub(ack=False).payload
        col.wait_total(1)
        silent.close()
        col.wait_total(2)
        col.stop()
        self.assertEqual(col.got["good"][1][1], held)
        back = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 300)])
        self.assertEqual(back.connack.session_present, 1)
        back.expect_no_publish()

    def test_offline_persistent_member_skipped_4_8_2(self):
        """A member whose session is kept but offline gets nothing while others are online;
        after it comes back it gets only new messages, in turn."""
        t, cid = self.topic(), unique("off")
        off = self.raw5(cid, props=[(SESSION_EXPIRY_INTERVAL, 300)])
        off.subscribe5([("$share/o/" + t, sub_options(qos=1))])
        off.disconnect5()
        col = Collector(self._members("$share/o/" + t, 2))
        self._publish(t, 20, prefix=b"a")
        self._assert_each_once(col, 20, prefix=b"a")
        back = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 300)])
        self.assertEqual(back.connack.session_present, 1)
        col_back = Collector({"back": back})
        self._publish(t, 3, prefix=b"b")
        col.wait_total(22)
        col_back.wait_total(1)
        col_back.quiet(1)
        col.stop()
        col_back.stop()
        self.assertEqual(col_back.got["back"][0][1][:1], b"b", col_back.got)

    def test_no_retained_messages_for_shared_subscription(self):
        """Retained message on T; SUBSCRIBE $share/g/T sends none (4.8.2, 3.3.1.3); a plain
        subscription of the same client to another retained topic is the barrier."""
        t, barrier = self.topic(), self.topic("/barrier")
        pub = self.raw5()
        pub.publish5(t, b"ret", qos=1, retain=True)
        pub.publish5(barrier, b"barrier", qos=1, retain=True)
        c = self.raw5()
        c.subscribe5([("$share/g/" + t, sub_options(qos=1))], pid=1)
        old = self.raw()
        old.subscribe([("$share/g2/" + t, 1)], pid=1)
        c.subscribe5([(barrier, sub_options(qos=1))], pid=2)
        old.subscribe([(barrier, 1)], pid=2)
        self.assertEqual(c.recv_pub().payload, b"barrier")
        self.assertEqual(old.recv_publish().payload, b"barrier")
        c.expect_no_publish()
        old.expect_none()
        pub.publish5(t, b"live", qos=1)
        self.assertEqual(c.recv_pub().payload, b"live")
        self.assertEqual(old.recv_publish().payload, b"live")

    def test_invalid_share_names_v5_0x8F_MQTT_4_8_2_1_and_2(self):
        """$share//x (empty share name [MQTT-4.8.2-1]), $share/a+/x and $share/a#/x (wildcard
        in share name [MQTT-4.8.2-2]), $share/g and $share/g/ (no filter [MQTT-4.8.2-2]),
        $queue/ (no filter): SUBACK 0x8F each; valid ones in the same SUBSCRIBE are granted
        in order [MQTT-3.9.3-1]."""
        c = self.raw5()
        t = self.topic()
        filters = ["$share//x", "$share/a+/x", "$share/a#/x", "$share/g", "$share/g/",
                   "$share/ok/" + t, "$queue/"]
        codes = c.subscribe5([(f, sub_options(qos=1)) for f in filters])
        self.assertEqual(codes, [RC_TOPIC_FILTER_INVALID] * 5 + [1, RC_TOPIC_FILTER_INVALID])

    def test_invalid_share_names_v311_0x80(self):
        """The same invalid share names from a 3.1.1 client: SUBACK 0x80 (Failure)."""
        c = self.raw()
        t = self.topic()
        codes = c.subscribe([("$share//x", 1), ("$share/a+/x", 1), ("$share/g", 1),
                             ("$share/ok/" + t, 1)])
        self.assertEqual(codes, [0x80, 0x80, 0x80, 1])

    def test_no_local_on_shared_subscription_is_protocol_error_MQTT_3_8_3_4(self):
        """No Local 1 on a shared subscription is a Protocol Error [MQTT-3.8.3-4]:
        DISCONNECT 0x82."""
        c = self.raw5()
        c.send(subscribe5_packet(1, [("$share/nl/" + self.topic(),
                                      sub_options(qos=1, no_local=True))]))
        c.expect_disconnect(RC_PROTOCOL_ERROR)

    def test_unsubscribed_member_gets_nothing(self):
        """After UNSUBSCRIBE a member gets no more messages; the rest of the group gets all."""
        t = self.topic()
        members = self._members("$share/u/" + t, 2)
        self.assertEqual(members["m0"].unsubscribe5(["$share/u/" + t]), [0])
        col = Collector(members)
        self._publish(t, 6)
        self._assert_each_once(col, 6)
        col.stop()
        self.assertEqual(col.counts(), {"m0": 0, "m1": 6})

    def test_paho_v5_and_v311_group(self):
        """paho MQTTv5 and MQTTv311 clients in one group: every message once overall."""
        t = self.topic()
        a = self.paho5()
        b = self.paho(protocol=paho.MQTTv311)
        self.assertEqual(a.subscribe("$share/p/" + t, qos=1), [1])
        self.assertEqual(b.subscribe("$share/p/" + t, 1), [1])
        pub = self.paho5()
        for i in range(10):
            pub.publish(t, b"%d" % i, qos=1)
        got = []
        for c in (a, b):
            for _ in range(5):
                got.append(c.recv().payload)
        self.assertEqual(sorted(got), sorted(b"%d" % i for i in range(10)))
        a.expect_none()
        b.expect_none()


class _StillServing:
    """Each class below has its own broker: the failure mode seen here killed the process."""

    def assert_still_serving(self):
        try:
            self.raw5().ping()
        except Exception:
            try:
                wait_until(lambda: not self.broker.alive(), 2, "broker exit")
            except AssertionError:
                raise
            self.fail("broker died (exit %s) after a sole shared member left with an "
                      "unacknowledged QoS 1 message" % self.broker.proc.returncode)


class SoleMemberLeaves(_StillServing, Broker5TestCase):

    def test_sole_member_closes_with_unacked_qos1(self):
        """The only member of a group closes with a QoS 1 message unacknowledged: there is no
        other member to take it (4.8.2); the broker must go on serving (it must neither crash
        nor loop), and a new member gets new messages."""
        t = self.topic()
        c = self.raw5()
        c.subscribe5([("$share/solo/" + t, sub_options(qos=1))])
        pub = self.raw5()
        pub.publish5(t, b"held", qos=1, pid=1)
        self.assertEqual(c.recv_pub(ack=False).payload, b"held")
        c.close()
        self.assert_still_serving()
        d = self.raw5()
        d.subscribe5([("$share/solo/" + t, sub_options(qos=1))])
        pub.publish5(t, b"next", qos=1, pid=2)
        got = [d.recv_pub().payload]
        if got[0] == b"held":  # passing it on to the new member is fine too
            got.append(d.recv_pub().payload)
        self.assertEqual(got[-1], b"next")
        self.assert_broker_alive()


class SolePersistentMemberLeaves(_StillServing, Broker5TestCase):

    def test_sole_persistent_member_closes_with_unacked_qos1(self):
        """The same with a persistent session (expiry 300): the message stays with it and is
        sent again when it resumes (4.8.2: "MAY wait for the Client to reconnect")."""
        t, cid = self.topic(), unique("solo")
        props = [(SESSION_EXPIRY_INTERVAL, 300)]
        c = self.raw5(cid, props=props)
        c.subscribe5([("$share/solo2/" + t, sub_options(qos=1))])
        self.raw5().publish5(t, b"held", qos=1)
        self.assertEqual(c.recv_pub(ack=False).payload, b"held")
        c.close()
        self.assert_still_serving()
        back = self.raw5(cid, clean_start=False, props=props)
        self.assertEqual(back.connack.session_present, 1)
        self.assertEqual(back.recv_pub().payload, b"held")
        self.assert_broker_alive()


if __name__ == "__main__":
    main()
