#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""--log-format json (node/base/log.h): every stderr line of mqttd is one JSON object with ts
(ISO-8601 UTC, milliseconds), level and msg; the "client connected" and "client disconnected"
events carry client_id, peer, protocol_version and (disconnect) reason. Clients are
mosquitto_pub and paho. mqttd only."""

import json
import re
import subprocess
import time
import unittest

import paho.mqtt.client as paho

import harness
from harness import WAIT

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def parse_all(broker):
    """Every stderr line so far as a JSON object (AssertionError naming a line that is not)."""
    events = []
    for line in broker.logs.splitlines():
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError("not JSON: %r (%s)" % (line, e))
        assert isinstance(obj, dict), line
        events.append(obj)
    return events


def wait_event(broker, msg, client_id):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for e in parse_all(broker):
            if e.get("msg") == msg and e.get("client_id") == client_id:
                return e
        time.sleep(0.05)  # polling another process's output with a deadline
    raise AssertionError("no %r event for %s in:\n%s" % (msg, client_id, broker.logs))


@harness.only_mqttd("mqttd's --log-format")
class JsonLogTest(unittest.TestCase):

    def setUp(self):
        self.broker = harness.start_broker(["--log-format", "json"])
        self.addCleanup(self.broker.kill)

    def test_every_line_is_json_with_ts_level_msg(self):
        cid = harness.unique("pub")
        subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p", str(self.broker.port),
                        "-i", cid, "-t", "a/b", "-m", "x", "-V", "mqttv311"],
                       check=True, timeout=WAIT)
        wait_event(self.broker, "client disconnected", cid)
        events = parse_all(self.broker)
        self.assertGreater(len(events), 2)
        for e in events:
            self.assertRegex(e["ts"], TS)
            self.assertIn(e["level"], ("debug", "info", "warn", "error"))
            self.assertIsInstance(e["msg"], str)

    def test_connect_and_disconnect_events_of_mosquitto_pub(self):
        cid = harness.unique("pub")
        subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p", str(self.broker.port),
                        "-i", cid, "-t", "a/b", "-m", "x", "-V", "mqttv5"],
                       check=True, timeout=WAIT)
        connected = wait_event(self.broker, "client connected", cid)
        self.assertEqual(connected["protocol_version"], "5.0")
        self.assertRegex(connected["peer"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual(connected["level"], "info")
        gone = wait_event(self.broker, "client disconnected", cid)
        self.assertEqual(gone["peer"], connected["peer"])
        self.assertEqual(gone["protocol_version"], "5.0")
        self.assertEqual(gone["reason"], "client sent DISCONNECT")
        self.assertEqual(gone["reason_code"], 0)

    def test_connection_lost_without_disconnect_has_a_reason(self):
        cid = harness.unique("paho")
        c = paho.Client(client_id=cid, protocol=paho.MQTTv311)
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        connected = wait_event(self.broker, "client connected", cid)
        self.assertEqual(connected["protocol_version"], "3.1.1")
        c.loop_stop()
        c.socket().close()  # no DISCONNECT: the will would go [MQTT-3.1.2-8]
        gone = wait_event(self.broker, "client disconnected", cid)
        self.assertEqual(gone["reason"], "connection closed without DISCONNECT")
        self.assertNotIn("reason_code", gone)

    def test_quotes_in_a_client_id_stay_valid_json(self):
        cid = 'q"uo\\te-' + harness.unique("x")
        subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p", str(self.broker.port),
                        "-i", cid, "-t", "a/b", "-m", "x"], check=True, timeout=WAIT)
        wait_event(self.broker, "client disconnected", cid)


if __name__ == "__main__":
    unittest.main()
