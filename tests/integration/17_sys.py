#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""$SYS topics (node/sys, docs/sys-topics.md) with Mosquitto's names: published retained every
--sys-interval seconds; mosquitto_sub on $SYS/# gets them; the traffic counters grow with
traffic and match /metrics; a subscriber to # gets no $SYS message [MQTT-4.7.2-1];
--sys-interval 0 publishes none. mqttd only."""

import os
import subprocess
import sys
import time
import unittest

import paho.mqtt.client as paho

import harness
from harness import WAIT, QUIET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
http_test = __import__("12_http")

EXPECTED = [
    "$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
    "$SYS/broker/clients/disconnected", "$SYS/broker/clients/total",
    "$SYS/broker/messages/received", "$SYS/broker/messages/sent",
    "$SYS/broker/bytes/received", "$SYS/broker/bytes/sent",
    "$SYS/broker/retained messages/count", "$SYS/broker/subscriptions/count",
    "$SYS/broker/store/messages/count",
] + ["$SYS/broker/load/%s/%s" % (what, w)
     for what in ("messages/received", "messages/sent", "bytes/received", "bytes/sent")
     for w in ("1min", "5min", "15min")]


def sys_snapshot(broker):
    """{topic: payload} of the retained messages mosquitto_sub gets on $SYS/# (it stops at the
    first live one: the next round's uptime)."""
    out = subprocess.run(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port),
                          "-t", "$SYS/#", "-v", "--retained-only", "-W", str(int(WAIT))],
                         capture_output=True, text=True, timeout=WAIT + 5)
    values = {}
    for line in out.stdout.splitlines():
        topic, _, payload = line.partition(" ")
        if topic.startswith("$SYS/broker/retained"):  # the topic has a space in it
            rest = line[len("$SYS/broker/retained messages/count "):]
            topic, payload = "$SYS/broker/retained messages/count", rest
        values[topic] = payload
    return values


def wait_value(broker, topic, predicate, what):
    deadline = time.monotonic() + WAIT * 2
    last = None
    while time.monotonic() < deadline:
        last = sys_snapshot(broker).get(topic)
        if last is not None and predicate(last):
            return last
        time.sleep(0.2)  # the next $SYS round (interval 1 s)
    raise AssertionError("%s: %r is %r" % (what, topic, last))


@harness.only_mqttd("mqttd's $SYS topics")
class SysTopicsTest(unittest.TestCase):

    def setUp(self):
        self.broker = harness.start_broker(["--sys-interval", "1"])
        self.addCleanup(self.broker.kill)

    def test_mosquitto_names_are_published_retained(self):
        values = {}
        deadline = time.monotonic() + WAIT
        while set(EXPECTED) - set(values) and time.monotonic() < deadline:
            values.update(sys_snapshot(self.broker))
        self.assertEqual(sorted(set(EXPECTED) - set(values)), [], values)
        self.assertTrue(values["$SYS/broker/version"].startswith("mqttd "))
        self.assertRegex(values["$SYS/broker/uptime"], r"^\d+ seconds$")
        float(values["$SYS/broker/load/messages/received/1min"])
        self.assertFalse(any(t.startswith("$SYS/cluster/") for t in values), values)

    def test_counters_grow_with_traffic_and_match_metrics(self):
        for i in range(5):
            subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p",
                            str(self.broker.port), "-t", "t/%d" % i, "-m", "x" * 100,
                            "-q", "1"], check=True, timeout=WAIT)
        wait_value(self.broker, "$SYS/broker/messages/received", lambda v: int(v) >= 5,
                   "5 QoS 1 publishes counted")
        wait_value(self.broker, "$SYS/broker/bytes/received", lambda v: int(v) >= 500,
                   "their bytes counted")
        http = http_test.http_address(self.broker.ready_line)
        samples, types = http_test.parse_metrics(http_test.get(http, "/metrics")[1])
        self.assertEqual(types["mqttd_messages_received_total"], "counter")
        self.assertEqual(samples[("mqttd_messages_received_total", '{qos="1"}')], 5)
        self.assertGreaterEqual(samples[("mqttd_bytes_received_total", "")], 500)
        # The $SYS messages mosquitto_sub received are PUBLISHes sent at QoS 0.
        self.assertGreater(samples[("mqttd_messages_sent_total", '{qos="0"}')], 0)

    def test_clients_connected_counts_a_paho_client(self):
        c = paho.Client(client_id=harness.unique("c"), clean_session=False)
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        self.addCleanup(c.loop_stop)
        # mosquitto_sub itself may be connected during a round: at least paho.
        wait_value(self.broker, "$SYS/broker/clients/connected", lambda v: int(v) >= 1,
                   "paho connected")
        c.disconnect()
        wait_value(self.broker, "$SYS/broker/clients/disconnected", lambda v: int(v) == 1,
                   "paho's persistent session is disconnected")

    def test_hash_subscriber_gets_no_sys_messages(self):
        """[MQTT-4.7.2-1]: a filter starting with a wildcard matches no topic starting
        with $."""
        got = []
        c = paho.Client(client_id=harness.unique("all"))
        c.on_message = lambda _c, _u, m: got.append(m.topic)
        c.connect(self.broker.host, self.broker.port)
        c.subscribe([("#", 0), ("+/broker/uptime", 0)])
        c.loop_start()
        self.addCleanup(c.loop_stop)
        # Barrier: an ordinary message arrives, and two $SYS rounds pass.
        wait_value(self.broker, "$SYS/broker/uptime", lambda v: True, "uptime")
        subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p", str(self.broker.port),
                        "-t", "plain", "-m", "x"], check=True, timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while "plain" not in got and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0 + QUIET)  # two rounds at --sys-interval 1 must not reach it
        self.assertIn("plain", got)
        self.assertEqual([t for t in got if t.startswith("$")], [])


@harness.only_mqttd("mqttd's --sys-interval")
class SysOffTest(unittest.TestCase):

    def test_interval_zero_publishes_nothing(self):
        broker = harness.start_broker(["--sys-interval", "0"])
        self.addCleanup(broker.kill)
        out = subprocess.run(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port),
                              "-t", "$SYS/#", "-v", "-C", "1", "-W", "2"],
                             capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(out.stdout, "")


if __name__ == "__main__":
    unittest.main()
