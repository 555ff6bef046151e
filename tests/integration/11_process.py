#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The mqttd process: ready line, SIGTERM, --help, bad options. mqttd only (skipped when
MQTTD_BIN is Mosquitto, whose command line is different)."""

import os
import signal
import subprocess
import tempfile
import time
import unittest

import harness
from harness import WAIT, RawClient

OPTIONS = ["--config", "--listen", "--data-dir", "--node-id", "--log-level", "--max-inflight",
           "--max-queued-messages", "--max-packet-size"]


def run_mqttd(args, timeout=WAIT):
    return subprocess.run([harness.broker_bin()] + args, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


@harness.only_mqttd("process interface of mqttd; Mosquitto's command line differs")
class ProcessTest(unittest.TestCase):

    def test_ready_line_names_listener(self):
        b = harness.start_broker()
        try:
            self.assertIn("ready", b.ready_line)
            self.assertIn("mqtt=%s:%d" % (b.host, b.port), b.ready_line)
            c = RawClient(b)
            c.connect()
            c.ping()
            c.close()
        finally:
            b.stop()

    def test_sigterm_closes_clients_and_exits_0(self):
        b = harness.start_broker()
        try:
            clients = [RawClient(b) for _ in range(3)]
            for c in clients:
                c.connect()
            clients[0].subscribe([("t/#", 1)])
            b.proc.send_signal(signal.SIGTERM)
            for c in clients:
                c.wait_closed()
            self.assertEqual(b.proc.wait(WAIT), 0, b.log_tail())
        finally:
            b.kill()

    def test_help_lists_every_option(self):
        r = run_mqttd(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout + r.stderr
        for opt in OPTIONS:
            self.assertIn(opt, out)

    def test_unknown_option_exits_nonzero_naming_it(self):
        r = run_mqttd(["--no-such-option", "1"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no-such-option", r.stdout + r.stderr)

    def test_bad_values_exit_nonzero_naming_the_option(self):
        with tempfile.TemporaryDirectory() as d:
            base = ["--data-dir", d, "--node-id", "n1", "--listen", "127.0.0.1:0"]
            cases = [
                (["--max-inflight", "many"], "max-inflight"),
                (["--max-queued-messages", "-5"], "max-queued-messages"),
                (["--max-packet-size", "huge"], "max-packet-size"),
                (["--log-level", "shouting"], "log-level"),
                (["--listen", "not-an-address"], "listen"),
                (["--config", os.path.join(d, "missing.conf")], "config"),
            ]
            for extra, name in cases:
                with self.subTest(args=extra):
                    args = base + extra
                    if extra[0] == "--listen":
                        args = base[:4] + extra
                    try:
                        r = run_mqttd(args)
                    except subprocess.TimeoutExpired:
                        self.fail("mqttd %s did not exit" % extra)
                    self.assertNotEqual(r.returncode, 0)
                    self.assertIn(name, r.stdout + r.stderr)

    def test_stops_promptly_on_sigterm_when_idle(self):
        b = harness.start_broker()
        start = time.monotonic()
        code = b.stop()
        self.assertEqual(code, 0, b.log_tail())
        self.assertLess(time.monotonic() - start, 5)


if __name__ == "__main__":
    harness.main()
