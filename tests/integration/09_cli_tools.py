#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""End to end with the real command line clients mosquitto_pub / mosquitto_sub, MQTT 3.1 and
3.1.1, QoS 0/1/2, retained (-r), many messages from stdin (-l)."""

import queue
import shutil
import subprocess
import threading
import unittest

import harness
from harness import WAIT, BrokerTestCase

VERSIONS = ("mqttv311", "mqttv31")


class Sub:
    """A running mosquitto_sub; lines() yields 'topic|qos|retain|payload' for each message."""

    def __init__(self, broker, topic, qos, version, count, cid=None):
        # stdbuf: mosquitto_sub's stdout is block-buffered into a pipe.
        cmd = ["stdbuf", "-oL", "mosquitto_sub", "-h", broker.host, "-p", str(broker.port),
               "-t", topic, "-q", str(qos), "-V", version, "-C", str(count), "-d",
               "-F", "MSG %t|%q|%r|%p", "-W", "60"]
        if cid:
            cmd += ["-i", cid]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.q = queue.Queue()
        self.debug = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.proc.stdout.close()
        self.q.put(None)

    def _next(self):
        try:
            line = self.q.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError("mosquitto_sub silent; debug so far: %s" % self.debug)
        if line is None:
            raise AssertionError("mosquitto_sub ended; debug: %s" % self.debug)
        return line

    def wait_subscribed(self):
        while True:
            line = self._next()
            self.debug.append(line)
            if "SUBACK" in line:
                return

    def messages(self, n):
        out = []
        while len(out) < n:
            line = self._next()
            if line.startswith("MSG "):
                out.append(line[4:])
            else:
                self.debug.append(line)
        return out

    def finish(self):
        try:
            return self.proc.wait(WAIT)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def pub(broker, topic, version, qos=0, message=None, retain=False, stdin_lines=None):
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic,
           "-q", str(qos), "-V", version]
    if retain:
        cmd.append("-r")
    if stdin_lines is not None:
        cmd.append("-l")
        r = subprocess.run(cmd, input="".join(l + "\n" for l in stdin_lines), text=True,
                           capture_output=True, timeout=60)
    else:
        cmd += ["-m", message]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
    if r.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (cmd, r.returncode, r.stdout + r.stderr))


@unittest.skipUnless(shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub"),
                     "mosquitto-clients not installed")
class CliToolsTest(BrokerTestCase):

    def sub(self, *args):
        s = Sub(self.broker, *args)
        self.addCleanup(s.kill)
        return s

    def test_pub_sub_each_qos_and_version_MQTT_3_3_4_1(self):
        for version in VERSIONS:
            for qos in (0, 1, 2):
                with self.subTest(version=version, qos=qos):
                    t = self.topic("/%s/%d" % (version, qos))
                    sub = self.sub(t, qos, version, 1)
                    sub.wait_subscribed()
                    pub(self.broker, t, version, qos, "hello-%d" % qos)
                    self.assertEqual(sub.messages(1), ["%s|%d|0|hello-%d" % (t, qos, qos)])
                    self.assertEqual(sub.finish(), 0)

    def test_mixed_versions_and_qos_downgrade_MQTT_3_8_4_6(self):
        t = self.topic()
        sub = self.sub(t + "/+", 1, "mqttv31", 3)
        sub.wait_subscribed()
        for q in (0, 1, 2):
            pub(self.broker, "%s/%d" % (t, q), "mqttv311", q, "m%d" % q)
        self.assertEqual(sub.messages(3), ["%s/0|0|0|m0" % t, "%s/1|1|0|m1" % t,
                                           "%s/2|1|0|m2" % t])
        self.assertEqual(sub.finish(), 0)

    def test_retained_with_r_MQTT_3_3_1_5_MQTT_3_3_1_8(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                t = self.topic("/" + version)
                pub(self.broker, t, version, 1, "kept-" + version, retain=True)
                sub = self.sub(t, 1, version, 1)
                self.assertEqual(sub.messages(1), ["%s|1|1|kept-%s" % (t, version)])
                self.assertEqual(sub.finish(), 0)

    def test_many_lines_in_order_MQTT_4_6_0_6(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                t = self.topic("/" + version)
                lines = ["line-%03d" % i for i in range(200)]
                sub = self.sub(t, 2, version, len(lines))
                sub.wait_subscribed()
                pub(self.broker, t, version, 1, stdin_lines=lines)
                got = [m.split("|")[3] for m in sub.messages(len(lines))]
                self.assertEqual(got, lines)
                self.assertEqual(sub.finish(), 0)


if __name__ == "__main__":
    harness.main()
