#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Persistence across a node crash (issue 5): retained messages, persistent sessions, session
expiry while down, clean sessions, and refusal of locked / corrupt data directories.

Each test starts its own node on a fixed port and data directory and "crashes" it with SIGKILL
(under Mosquitto, which only saves periodically, a graceful SIGTERM; see harness_persist), then
restarts it on the same port and directory."""

import os
import time
import unittest

from harness_persist import (Node, RawClient, RawClient5, crash_mode, mqttd_command,  # noqa: I100
                             run_expect_refusal, sub_options, unique)
import harness  # noqa: E402 (path set up by harness_persist)
from harness5 import (CONTENT_TYPE, MESSAGE_EXPIRY_INTERVAL, SESSION_EXPIRY_INTERVAL,  # noqa: E402
                      USER_PROPERTY, wait_elapsed)

# Checked by hand: Mosquitto 2.0.11 expires a disconnected session without a restart, but a
# session restored from its database never expires until the client reconnects.
MOSQUITTO_NO_RESTORED_EXPIRY = "Mosquitto 2.0.11 never expires sessions restored at start-up"

CRASH_SIGNS = ("Segmentation fault", "core dumped", "terminate called", "Aborted",
               "AddressSanitizer", "stack smashing")


class NodeTestCase(unittest.TestCase):
    EXTRA_ARGS = ()

    def setUp(self):
        self.node = Node(self.EXTRA_ARGS)
        self.node.start()
        self._clients = []

    def tearDown(self):
        for c in self._clients:
            c.close()
        self.node.cleanup()

    def restart(self):
        """Crash (SIGKILL; graceful under Mosquitto) and start again on the same port and dir.
        Connections of the old process are gone."""
        self.node.crash()
        for c in self._clients:
            c.close()
        self.node.start()

    def raw(self, cid=None, **kw):
        c = RawClient(self.node)
        self._clients.append(c)
        c.sp, _ = c.connect(cid, **kw)
        return c

    def raw5(self, cid=None, **kw):
        c = RawClient5(self.node)
        self._clients.append(c)
        c.connack = c.connect5(cid, **kw)
        return c

    def recv_all(self, c, n, v5=False):
        """n PUBLISH packets (acknowledged), then nothing more within QUIET."""
        got = [c.recv_pub() if v5 else c.recv_publish() for _ in range(n)]
        (c.expect_no_publish if v5 else c.expect_none)()
        return got


class RetainedTest(NodeTestCase):

    def test_retained_survive_crash_wildcard_returns_all_MQTT_3_3_1_5_MQTT_3_3_1_8(self):
        """Retained messages published with QoS 1 and 2 (acknowledged) survive two
        crash/restart cycles [MQTT-3.3.1-5], not being session state [MQTT-3.1.2-7]; a `#`
        and a `+` subscribe afterwards return exactly the matching retained messages with
        RETAIN 1 [MQTT-3.3.1-8]; a replaced one has its last value; one removed by a
        zero-length retained message stays removed [MQTT-3.3.1-10], [MQTT-3.3.1-11]."""
        base = unique("ret")
        pub = self.raw()
        expected = {
            base + "/a": (b"A", 1),
            base + "/b/c": (b"BC", 1),
            base + "/d/e/f": (b"DEF", 2),
            base + "/g": (b"new", 1),
            base + "/sp ace/\u00e9": (b"utf8", 2),
        }
        pub.publish(base + "/g", b"old", qos=1, retain=True, pid=1)
        pub.publish(base + "/h", b"gone", qos=1, retain=True, pid=2)
        for i, (t, (payload, qos)) in enumerate(sorted(expected.items())):
            pub.publish(t, payload, qos=qos, retain=True, pid=10 + i)
        pub.publish(base + "/h", b"", qos=1, retain=True, pid=3)  # removes base/h
        pub.publish(unique("other") + "/x", b"X", qos=1, retain=True, pid=4)
        pub.publish(base, b"parent", qos=1, retain=True, pid=5)  # `base/#` matches `base`
        expected[base] = (b"parent", 1)

        for _cycle in range(2):
            self.restart()

        sub = self.raw()
        self.assertEqual(sub.subscribe([(base + "/#", 2)]), [2])
        got = self.recv_all(sub, len(expected))
        by_topic = {p.topic: p for p in got}
        self.assertEqual(sorted(by_topic), sorted(expected), got)
        for t, (payload, qos) in expected.items():
            p = by_topic[t]
            self.assertTrue(p.retain, p)
            self.assertEqual(p.payload, payload, p)
            self.assertEqual(p.qos, qos, p)

        sub2 = self.raw()
        sub2.subscribe([(base + "/+", 1)])
        got = self.recv_all(sub2, 2)
        self.assertEqual(sorted((p.topic, p.payload) for p in got),
                         [(base + "/a", b"A"), (base + "/g", b"new")])
        self.assertTrue(all(p.retain for p in got))

    def test_retained_properties_and_expiry_survive_crash_MQTT_3_3_2_5(self):
        """5.0 retained messages keep their properties across a crash (Content Type, User
        Property, Message Expiry Interval counting down [MQTT-3.3.2-6]); one whose Message
        Expiry Interval passed while the node was down is not delivered [MQTT-3.3.2-5]."""
        base = unique("ret5")
        pub = self.raw5()
        pub.publish5(base + "/short", b"short", qos=1, retain=True, pid=1,
                     props=[(MESSAGE_EXPIRY_INTERVAL, 2)])
        t0 = time.monotonic()
        pub.publish5(base + "/props", b"props", qos=2, retain=True, pid=2,
                     props=[(MESSAGE_EXPIRY_INTERVAL, 3600), (CONTENT_TYPE, "text/x-test"),
                            (USER_PROPERTY, ("k", "v1")), (USER_PROPERTY, ("k", "v2"))])
        self.node.crash()
        wait_elapsed(t0, 3.0)  # the expiry passing while the node is down is the point
        self.node.start()
        sub = self.raw5()
        sub.subscribe5([(base + "/#", sub_options(qos=2))])
        got = self.recv_all(sub, 1, v5=True)
        p = got[0]
        self.assertEqual((p.topic, p.payload, p.qos, p.retain), (base + "/props", b"props", 2,
                                                                 True))
        self.assertEqual(p.props.get(CONTENT_TYPE), "text/x-test")
        self.assertEqual(p.user_props, [("k", "v1"), ("k", "v2")])
        self.assertLessEqual(p.props.get(MESSAGE_EXPIRY_INTERVAL, 0), 3600)
        self.assertGreater(p.props.get(MESSAGE_EXPIRY_INTERVAL, 0), 3500)


class SessionTest(NodeTestCase):
    EXTRA_ARGS = ("--max-queued-messages", "100")

    def test_311_persistent_session_survives_crash_MQTT_3_2_2_2_MQTT_3_1_2_4(self):
        """3.1.1 Clean Session 0: a session whose client had disconnected and one whose client
        was connected when the node died both survive: Clean Session 0 reconnect gets Session
        Present 1 [MQTT-3.2.2-2]; the queued QoS 1 message is delivered [MQTT-3.1.2-5]; the
        subscriptions, with their granted QoS, still deliver [MQTT-3.1.2-4]."""
        t_q1, t_wild = unique("s1"), unique("s2")
        off_id, on_id = unique("off"), unique("on")
        off = self.raw(off_id, clean=False)
        self.assertEqual(off.sp, 0)
        self.assertEqual(off.subscribe([(t_q1, 1), (t_wild + "/+", 2)]), [1, 2])
        off.disconnect()
        on = self.raw(on_id, clean=False)
        self.assertEqual(on.subscribe([(t_q1, 2)]), [2])
        self.raw().publish(t_q1, b"queued", qos=1)
        self.assertEqual(on.recv_publish().payload, b"queued")

        self.restart()

        off = self.raw(off_id, clean=False)
        self.assertEqual(off.sp, 1, "disconnected 3.1.1 session lost [MQTT-3.2.2-2]")
        p = off.recv_publish()
        self.assertEqual((p.topic, p.payload, p.qos), (t_q1, b"queued", 1))
        on = self.raw(on_id, clean=False)
        self.assertEqual(on.sp, 1, "connected 3.1.1 session lost [MQTT-3.2.2-2]")
        pub = self.raw()
        pub.publish(t_q1, b"after", qos=2)
        pub.publish(t_wild + "/x", b"wild", qos=2, pid=2)
        self.assertEqual([(p.topic, p.payload, p.qos) for p in self.recv_all(off, 2)],
                         [(t_q1, b"after", 1), (t_wild + "/x", b"wild", 2)])
        # `on` acknowledged "queued" just before the kill; if the kill beat the write of that
        # acknowledgement, a re-delivery with DUP 1 is correct QoS 1 behaviour [MQTT-4.4.0-1].
        p = on.recv_publish()
        if p.payload == b"queued":
            self.assertTrue(p.dup, p)
            p = on.recv_publish()
        self.assertEqual((p.payload, p.qos), (b"after", 2))
        on.expect_none()

    def test_50_session_with_expiry_survives_crash_MQTT_3_1_2_23(self):
        """5.0 Session Expiry Interval 3600 [MQTT-3.1.2-23], session created with Clean Start 0
        and (mqttd only) with Clean Start 1: after a crash a Clean Start 0 reconnect gets
        Session Present 1 [MQTT-3.2.2-3]; the queued message and the subscriptions with their
        options survive: Subscription Identifier [MQTT-3.3.4-3] and No Local [MQTT-3.8.3-3].
        (Mosquitto 2.0.11 does not save a session whose last CONNECT had Clean Start 1.)"""
        starts = [False] if harness.is_mosquitto() else [False, True]
        for first_clean_start in starts:
            with self.subTest(first_clean_start=first_clean_start):
                self._session_50_survives(first_clean_start)

    def _session_50_survives(self, first_clean_start):
        cid, t_id, t_nl = unique("s5"), unique("sid"), unique("nl")
        c = self.raw5(cid, clean_start=first_clean_start,
                      props=[(SESSION_EXPIRY_INTERVAL, 3600)])
        self.assertEqual(c.connack.session_present, 0)
        self.assertEqual(c.subscribe5([(t_id, sub_options(qos=1))], sub_id=7), [1])
        self.assertEqual(c.subscribe5([(t_nl, sub_options(qos=1, no_local=True))], pid=2), [1])
        c.disconnect5()
        self.raw5().publish5(t_id, b"queued", qos=1)

        self.restart()

        c = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 3600)])
        self.assertEqual(c.connack.session_present, 1, "5.0 session lost [MQTT-3.2.2-3]")
        p = c.recv_pub()
        self.assertEqual((p.topic, p.payload, p.sub_ids), (t_id, b"queued", [7]))
        self.raw5().publish5(t_id, b"after", qos=1)
        p = c.recv_pub()
        self.assertEqual((p.payload, p.sub_ids), (b"after", [7]))
        c.publish5(t_nl, b"own", qos=1, pid=3)  # No Local: not sent back to its publisher
        self.raw5().publish5(t_nl, b"other", qos=1)
        got = self.recv_all(c, 1, v5=True)
        self.assertEqual(got[0].payload, b"other")

    def _two_sessions(self, short_expiry):
        """A session with Session Expiry Interval short_expiry and a control one with 3600,
        each subscribed to its own topic with a QoS 1 message queued, both disconnected.
        Returns (short id, short topic, control id, control topic, time of disconnect)."""
        ids, topics = [unique("exp"), unique("ctl")], [unique("exp"), unique("ctl")]
        for cid, topic, expiry in zip(ids, topics, (short_expiry, 3600)):
            c = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, expiry)])
            c.subscribe5([(topic, sub_options(qos=1))])
            c.disconnect5()
        t0 = time.monotonic()
        pub = self.raw5()
        for i, topic in enumerate(topics):
            pub.publish5(topic, b"queued", qos=1, pid=i + 1)
        return ids[0], topics[0], ids[1], topics[1], t0

    def _check_expired_and_control(self, cid, topic, ctl_id, ctl_topic):
        ctl = self.raw5(ctl_id, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 3600)])
        self.assertEqual(ctl.connack.session_present, 1,
                         "control session (expiry 3600) lost [MQTT-3.2.2-3]")
        self.assertEqual(ctl.recv_pub().payload, b"queued")
        c = self.raw5(cid, clean_start=False, props=[(SESSION_EXPIRY_INTERVAL, 60)])
        self.assertEqual(c.connack.session_present, 0, "expired session restored")
        self.raw5().publish5(topic, b"after", qos=1)
        c.expect_no_publish()

    @harness.skip_under_mosquitto(MOSQUITTO_NO_RESTORED_EXPIRY)
    def test_50_session_expired_while_down_is_gone_MQTT_3_1_2_23(self):
        """Session Expiry Interval 2, client disconnected, node down for longer: after the
        restart that session (subscription, queued message) is gone: Clean Start 0 gets
        Session Present 0 [MQTT-3.2.2-3] and nothing is delivered; a control session with
        expiry 3600 disconnected at the same time is restored with its queued message."""
        cid, topic, ctl_id, ctl_topic, t0 = self._two_sessions(2)
        self.node.crash()
        wait_elapsed(t0, 3.5)  # the expiry passing while the node is down is the point
        self.node.start()
        self._check_expired_and_control(cid, topic, ctl_id, ctl_topic)

    @harness.skip_under_mosquitto(MOSQUITTO_NO_RESTORED_EXPIRY)
    def test_50_session_expiry_still_runs_after_restart_MQTT_3_1_2_23(self):
        """Session Expiry Interval 3: the node restarts at once; the expiry is still honoured
        after the restart (the session is not kept forever): 3 s plus margin after the
        disconnect a Clean Start 0 reconnect gets Session Present 0 [MQTT-3.2.2-3]; the control
        session (3600) is restored."""
        cid, topic, ctl_id, ctl_topic, t0 = self._two_sessions(3)
        self.restart()
        wait_elapsed(t0, 3 + 2.5)  # the passing of the interval is what is checked
        self._check_expired_and_control(cid, topic, ctl_id, ctl_topic)

    def test_clean_sessions_do_not_survive_MQTT_3_1_2_6(self):
        """A 3.1.1 Clean Session 1 session [MQTT-3.1.2-6] and a 5.0 session with Session
        Expiry Interval 0 [MQTT-3.1.2-23 a contrario], both connected when the node dies, are
        not restored: Clean Session/Start 0 reconnects get Session Present 0 and their old
        subscriptions deliver nothing."""
        t4, t5, id4, id5 = unique("c4"), unique("c5"), unique("c4"), unique("c5")
        c4 = self.raw(id4, clean=True)
        c4.subscribe([(t4, 1)])
        c5 = self.raw5(id5, clean_start=True)
        c5.subscribe5([(t5, sub_options(qos=1))])
        self.restart()
        c4 = self.raw(id4, clean=False)
        self.assertEqual(c4.sp, 0, "3.1.1 clean session restored after restart")
        c5 = self.raw5(id5, clean_start=False)
        self.assertEqual(c5.connack.session_present, 0, "5.0 expiry-0 session restored")
        pub = self.raw()
        pub.publish(t4, b"x", qos=1)
        pub.publish(t5, b"y", qos=1, pid=2)
        c4.expect_none()
        c5.expect_no_publish()


@harness.only_mqttd("data directory handling of mqttd")
class DataDirTest(unittest.TestCase):

    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.cleanup()

    def node(self, **kw):
        n = Node(**kw)
        self.nodes.append(n)
        return n

    def assert_clean_refusal(self, rc, err, path):
        self.assertNotEqual(rc, 0, "refused start exited 0:\n" + err)
        self.assertGreater(rc, 0, "killed by signal %d (crash), not a clean stop:\n%s"
                           % (-rc, err))
        for sign in CRASH_SIGNS:
            self.assertNotIn(sign, err)
        self.assertIn(path, err, "the error does not name the data directory")

    def put_retained(self, node, topic, payload):
        c = RawClient(node)
        c.connect()
        c.publish(topic, payload, qos=1, retain=True)
        c.disconnect()

    def get_retained(self, node, topic):
        c = RawClient(node)
        c.connect()
        c.subscribe([(topic, 1)])
        try:
            return c.recv_publish().payload
        except TimeoutError:
            raise AssertionError("retained message on %s lost" % topic)
        finally:
            c.close()

    def rocksdb_files(self, data_dir):
        """CURRENT, MANIFEST-*, *.sst, *.log of the RocksDB under data_dir (wherever it is).

        The node may still be running: a compaction can delete a file between the directory
        listing and its stat, so a file that vanished is skipped, not an error."""
        found = {}
        for d, _dirs, files in os.walk(data_dir):
            for f in files:
                if f == "CURRENT" or f.startswith("MANIFEST-") or f.endswith((".sst", ".log")):
                    try:
                        size = os.path.getsize(os.path.join(d, f))
                    except FileNotFoundError:
                        continue
                    found[os.path.relpath(os.path.join(d, f), data_dir)] = size
        if not any(os.path.basename(f) == "CURRENT" for f in found):
            self.fail("no RocksDB (CURRENT file) under the data directory %s after a run: "
                      "persistence is not stored there" % data_dir)
        return found

    def test_locked_data_dir_refused(self):
        """A second node on a data directory in use by a running node refuses to start
        (non-zero exit, error naming the directory) and leaves the first node's data intact."""
        a = self.node()
        a.start()
        topic = unique("lock")
        self.put_retained(a, topic, b"mine")
        rc, _out, err = run_expect_refusal(mqttd_command(a.data_dir))
        self.assert_clean_refusal(rc, err, a.data_dir)
        self.assertTrue(a.alive())
        self.assertEqual(self.get_retained(a, topic), b"mine")
        a.restart()
        self.assertEqual(self.get_retained(a, topic), b"mine")

    def test_missing_data_dir_created(self):
        """A data directory that does not exist (nor its parent) is created, and state
        persists in it across a crash."""
        n = self.node(create_data_dir=False)
        n.data_dir = os.path.join(n.root, "missing", "data")
        n.start()
        self.assertTrue(os.path.isdir(n.data_dir))
        topic = unique("miss")
        self.put_retained(n, topic, b"kept")
        n.restart()
        self.assertEqual(self.get_retained(n, topic), b"kept")
        self.rocksdb_files(n.data_dir)

    def test_data_dir_is_a_file_refused(self):
        """A regular file where the data directory should be: clean refusal naming it."""
        n = self.node(create_data_dir=False)
        path = os.path.join(n.root, "not-a-dir")
        with open(path, "w") as f:
            f.write("not a directory\n")
        rc, _out, err = run_expect_refusal(mqttd_command(path))
        self.assert_clean_refusal(rc, err, path)
        with open(path) as f:
            self.assertEqual(f.read(), "not a directory\n")

    def _corrupt_and_check(self, corrupt):
        n = self.node()
        n.start()
        self.put_retained(n, unique("corrupt"), b"data")
        self.assertEqual(n.stop(), 0, n.log_tail())
        before = self.rocksdb_files(n.data_dir)
        victim = corrupt(n.data_dir, before)
        with open(victim, "rb") as f:
            garbage = f.read()
        rc, _out, err = run_expect_refusal(mqttd_command(n.data_dir))
        self.assert_clean_refusal(rc, err, n.data_dir)
        # Never repaired or recreated silently: the damaged store is left as found.
        after = self.rocksdb_files(n.data_dir)
        self.assertLessEqual(set(before), set(after), "store files removed by a refused start")
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), garbage, "damaged file rewritten by a refused start")

    def test_garbage_in_current_refused(self):
        """Garbage in RocksDB's CURRENT: clear error naming the directory, non-zero exit, no
        crash, nothing repaired silently."""
        def corrupt(data_dir, files):
            path = os.path.join(data_dir, next(f for f in files
                                               if os.path.basename(f) == "CURRENT"))
            with open(path, "wb") as f:
                f.write(b"\x00garbage\xff not a manifest name\n")
            return path
        self._corrupt_and_check(corrupt)

    def test_garbage_manifest_refused(self):
        """The MANIFEST named by CURRENT overwritten with random bytes: same."""
        def corrupt(data_dir, files):
            with open(os.path.join(data_dir, next(f for f in files
                                                  if os.path.basename(f) == "CURRENT"))) as f:
                manifest = f.read().strip()
            cur_dir = os.path.dirname(os.path.join(
                data_dir, next(f for f in files if os.path.basename(f) == "CURRENT")))
            path = os.path.join(cur_dir, manifest)
            size = os.path.getsize(path)
            with open(path, "wb") as f:
                f.write(os.urandom(max(size, 512)))
            return path
        self._corrupt_and_check(corrupt)


if __name__ == "__main__":
    import sys
    sys.stderr.write("crash mode: %s\n" % crash_mode())
    unittest.main(verbosity=2)
