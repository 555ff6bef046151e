#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The mqttd process: ready line, SIGTERM, --help, bad options, the YAML config file, MQTTD_*
variables and --print-config. mqttd only (skipped when MQTTD_BIN is Mosquitto, whose command
line is different)."""

import os
import resource
import select
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import WAIT, RawClient

OPTIONS = ["--config", "--listen", "--data-dir", "--node-id", "--log-level", "--max-inflight",
           "--max-queued-messages", "--max-packet-size", "--log-format", "--print-config",
           "--strict-env"]


def run_mqttd(args, timeout=WAIT, env=None):
    """mqttd with `args`; `env` replaces the MQTTD_* variables of this process's environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTD_")}
    full_env.update(env or {})
    return subprocess.run([harness.broker_bin()] + args, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def write_config(directory, text, name="mqttd.yaml"):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def yaml_config(directory, extra=""):
    """A YAML config file: a free port on loopback, data in `directory`, then `extra`."""
    return write_config(directory, (
        "node_id: from-file\n"
        "data_dir: %s\n"
        "listeners:\n"
        "  - protocol: mqtt\n"
        "    address: 127.0.0.1:0\n"
        "limits:\n"
        "  max_inflight: 5\n" % os.path.join(directory, "data")) + extra)


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
                (["--config", os.path.join(d, "missing.yaml")], "config"),
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

    def test_starts_from_yaml_config_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = yaml_config(d)
            proc = subprocess.Popen([harness.broker_bin(), "--config", path,
                                     "--http-listen", "127.0.0.1:0"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            try:
                readable, _, _ = select.select([proc.stdout], [], [], WAIT)
                self.assertTrue(readable, "no ready line within %ss" % WAIT)
                ready = proc.stdout.readline()
                self.assertIn("mqttd from-file ready mqtt=127.0.0.1:", ready)
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(WAIT), 0, proc.stderr.read())
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stdout.close()
                proc.stderr.close()

    def test_print_config_applies_file_then_environment_then_flags(self):
        with tempfile.TemporaryDirectory() as d:
            path = yaml_config(d)
            r = run_mqttd(["--config", path, "--print-config"],
                          env={"MQTTD_LIMITS_MAX_INFLIGHT": "9", "MQTTD_CLUSTER_JOIN": "a:1,b:2"})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("node_id: from-file\n", r.stdout)
            self.assertIn("  max_inflight: 9\n", r.stdout)
            self.assertIn("  join:\n    - a:1\n    - b:2\n", r.stdout)
            self.assertIn("    address: 127.0.0.1:0\n", r.stdout)
            r = run_mqttd(["--max-inflight", "11", "--config", path, "--print-config"],
                          env={"MQTTD_LIMITS_MAX_INFLIGHT": "9"})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("  max_inflight: 11\n", r.stdout)
            # The printed configuration is itself a valid config file.
            again = run_mqttd(["--config", write_config(d, r.stdout, "printed.yaml"),
                               "--print-config"])
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertEqual(again.stdout.split("# ignored")[0], r.stdout.split("# ignored")[0])

    def test_print_config_masks_the_secret(self):
        r = run_mqttd(["--print-config"], env={"MQTTD_AUTH_HMAC_SECRET": "topsecret"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("topsecret", r.stdout)
        self.assertIn('hmac_secret: "********"', r.stdout)

    def test_bad_yaml_names_file_line_and_key(self):
        with tempfile.TemporaryDirectory() as d:
            path = yaml_config(d, "  receive_maximum: 0\n")  # line 8
            r = run_mqttd(["--config", path])
            self.assertEqual(r.returncode, 2)
            self.assertIn("%s:8: limits.receive_maximum: must be between 1 and 65535" % path,
                          r.stderr)
            path = yaml_config(d, "  tls: {}\n")
            r = run_mqttd(["--config", path])
            self.assertEqual(r.returncode, 2)
            self.assertIn("%s:8: limits.tls: unknown key" % path, r.stderr)

    def test_raft_port_in_use_stops_start_up_naming_the_key(self):
        # The registry's Raft port taken by another socket: the node used to start and then log
        # "raft_start: I/O error", "already started" every tick, without a registry.
        with tempfile.TemporaryDirectory() as d, socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            raft = "127.0.0.1:%d" % holder.getsockname()[1]
            r = run_mqttd(["--listen", "127.0.0.1:0", "--http-listen", "", "--data-dir", d,
                           "--cluster-listen", "127.0.0.1:0", "--cluster-raft-listen", raft])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("cluster.raft_listen %s: cannot listen: Address already in use" % raft,
                          r.stderr)

    def test_unknown_mqttd_variable_is_an_error_only_with_strict_env(self):
        env = {"MQTTD_LIMITS_MAX_INFLIHGT": "3"}
        r = run_mqttd(["--print-config"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("MQTTD_LIMITS_MAX_INFLIHGT", r.stdout)  # listed as ignored
        r = run_mqttd(["--strict-env", "--print-config"], env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("MQTTD_LIMITS_MAX_INFLIHGT", r.stderr)

    def test_stops_promptly_on_sigterm_when_idle(self):
        b = harness.start_broker()
        start = time.monotonic()
        code = b.stop()
        self.assertEqual(code, 0, b.log_tail())
        self.assertLess(time.monotonic() - start, 5)

    def test_raises_descriptor_limit_and_grows_table_before_connections(self):
        """Started with a soft RLIMIT_NOFILE below the hard one, mqttd raises it to the hard
        limit, and its descriptor table already holds min(65,536, limit) descriptors before any
        connection (each later growth of a threaded process's table waits ~10-17 ms for RCU)."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        low = min(hard, 256)
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
        try:
            b = harness.start_broker()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            with open("/proc/%d/limits" % b.proc.pid) as f:
                line = next(x for x in f if x.startswith("Max open files"))
            self.assertEqual(line.split()[3:5], [str(hard), str(hard)], line)
            with open("/proc/%d/status" % b.proc.pid) as f:
                slots = int(next(x for x in f if x.startswith("FDSize:")).split()[1])
            self.assertGreaterEqual(slots, min(65536, hard))
            if low < hard:
                b.wait_for_log("soft limit raised from %d" % low)
        finally:
            self.assertEqual(b.stop(), 0, b.log_tail())


if __name__ == "__main__":
    harness.main()
