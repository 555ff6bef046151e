#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Issue 5 crash test, offline subscribers: a publisher sends PERSIST_N (default 2000) QoS 1
(and, separately, QoS 2) messages to two persistent subscribers (3.1.1 Clean Session 0, 5.0
Session Expiry 3600) that are offline, while the node is killed with SIGKILL PERSIST_KILLS
(default 3) times at random moments plus once after the last acknowledgement, and restarted on
the same port and data directory; the publisher reconnects with Clean Session 0 and re-sends
what was not acknowledged with DUP 1 and the same packet ids, and PUBREL for what had PUBREC
[MQTT-4.4.0-1]. The subscribers then reconnect (Session Present 1 [MQTT-3.2.2-2] (3.1.1) /
[MQTT-3.2.2-3] (5.0)) and must receive every acknowledged message: QoS 1 at least once, a
duplicate only of a message the publisher re-sent [MQTT-4.3.2]; QoS 2 exactly once
[MQTT-4.3.3]; first deliveries in publisher order [MQTT-4.6.0-6]. Under Mosquitto the kills are
graceful SIGTERM restarts (validates the test logic only). PERSIST_SEED reproduces a run."""

import unittest

from harness_persist import check_stream, crash_mode, crash_run


class CrashOffline(unittest.TestCase):

    def test_qos1_offline_subscribers_survive_kills(self):
        crash_run(self, qos=1, online=False)

    def test_qos2_offline_subscribers_survive_kills_exactly_once(self):
        crash_run(self, qos=2, online=False)


class CheckStreamLogic(unittest.TestCase):
    """The oracle itself, on made-up streams (Mosquitto's graceful restarts never produce
    duplicates or losses, so these paths are not exercised by a real run there)."""

    def test_oracle(self):
        ok = [(0, False), (1, False), (2, False)]
        self.assertEqual(check_stream(ok, {0, 1, 2}, 1, set(), False), [])
        self.assertEqual(check_stream(ok, {0, 1, 2}, 2, set(), False), [])
        lost = [(0, False), (2, False)]
        self.assertIn("never delivered", check_stream(lost, {0, 1, 2}, 1, set(), False)[0])
        resend = [(0, False), (1, False), (1, False), (2, False)]
        self.assertEqual(check_stream(resend, {0, 1, 2}, 1, {1}, False), [])
        self.assertIn("duplicates", check_stream(resend, {0, 1, 2}, 1, set(), False)[0])
        self.assertIn("more than once", check_stream(resend, {0, 1, 2}, 2, {1}, False)[0])
        redelivered = [(0, False), (1, False), (1, True), (2, False)]
        self.assertEqual(check_stream(redelivered, {0, 1, 2}, 1, set(), True), [])
        self.assertTrue(check_stream(redelivered, {0, 1, 2}, 1, set(), False))
        swapped = [(0, False), (2, False), (1, False)]
        self.assertIn("out of order", check_stream(swapped, {0, 1, 2}, 1, set(), False)[0])
        # a re-sent message delivered again after later ones: first deliveries stay in order
        late_dup = [(0, False), (1, False), (2, False), (1, False), (2, False), (3, False)]
        self.assertEqual(check_stream(late_dup, {0, 1, 2, 3}, 1, {1, 2}, False), [])


if __name__ == "__main__":
    import sys
    sys.stderr.write("crash mode: %s\n" % crash_mode())
    unittest.main(verbosity=2)
