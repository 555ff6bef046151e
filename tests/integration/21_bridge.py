#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Bridges (issue 16, node/bridge, docs/bridges.md) against a real Mosquitto that the test
starts (Debian `mosquitto` on a free loopback port with a generated conf): out, in and both
directions with Mosquitto's topic lines and every valid row of its prefix table, QoS 0/1/2,
wildcards, exact message counts with `both` (no loop), the $SYS state topic, QoS 1 messages
queued while the remote is down (and across a kill -9 of mqttd) arriving in order, and TLS to
a Mosquitto TLS listener. mqttd only."""

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import paho.mqtt.client as paho

import certs
import harness
from harness import WAIT, QUIET

MOSQUITTO = "/usr/sbin/mosquitto"


class Mosquitto:
    """A Mosquitto on a fixed loopback port with `extra` conf lines; restartable on that port
    with its persistence directory kept."""

    def __init__(self, extra=(), port=None):
        self.dir = tempfile.mkdtemp(prefix="bridge-remote-")
        os.chmod(self.dir, 0o777)
        self.port = port or harness.free_port()
        self.extra = list(extra)
        self.proc = None
        self.log_lines = []
        self.start()

    def conf(self):
        return "\n".join(self.extra or ["listener %d 127.0.0.1" % self.port]) + "\n" + "\n".join([
            "allow_anonymous true",
            "persistence true",
            "persistence_location %s/" % self.dir,
            "log_dest stderr",
            "log_type all",
        ]) + "\n"

    def start(self):
        path = os.path.join(self.dir, "mosquitto.conf")
        with open(path, "w") as f:
            f.write(self.conf())
        lines = queue.Queue()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=harness._pump, args=(self.proc.stderr, self.log_lines, lines),
                         daemon=True).start()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            if "running" in line:
                return
        raise RuntimeError("mosquitto did not start:\n" + "".join(self.log_lines))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(WAIT)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Mqttd:
    """mqttd with a YAML config file; restartable (also after kill -9) on its data dir."""

    def __init__(self, config_text):
        self.dir = tempfile.mkdtemp(prefix="bridge-local-")
        self.config = os.path.join(self.dir, "mqttd.yaml")
        with open(self.config, "w") as f:
            f.write(config_text)
        self.broker = None
        self.start()

    def start(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        proc = subprocess.Popen(
            [harness.broker_bin(), "--config", self.config, "--listen", "127.0.0.1:0",
             "--data-dir", data, "--node-id", "bridge-node", "--http-listen", "127.0.0.1:0",
             "--sys-interval", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.log_lines, out = [], queue.Queue()
        threading.Thread(target=harness._pump, args=(proc.stderr, self.log_lines),
                         daemon=True).start()
        threading.Thread(target=harness._pump, args=(proc.stdout, [], out), daemon=True).start()
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = out.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            words = {w.partition("=")[0]: w.partition("=")[2] for w in line.split()}
            if "mqtt" in words:
                self.port = int(words["mqtt"].rpartition(":")[2])
                self.http = words.get("http")
                self.proc = proc
                return
        proc.kill()
        raise RuntimeError("mqttd did not start:\n" + "".join(self.log_lines))

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        """SIGTERM; a clean exit (0) is required: under ASan a leak or error changes it."""
        code = 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            code = self.proc.wait(WAIT)
        shutil.rmtree(self.dir, ignore_errors=True)
        assert code == 0, "mqttd exited with %s:\n%s" % (code, self.logs()[-4000:])

    def logs(self):
        return "".join(self.log_lines)


def bridge_config(port, topics, extra=""):
    lines = ["bridges:", "  - name: b1", "    addresses: ['127.0.0.1:%d']" % port,
             "    restart_timeout: {min: 1, max: 2}", "    keepalive: 5"]
    if extra:
        lines += ["    " + l for l in extra.strip().splitlines()]
    lines.append("    topics:")
    lines += ["      - '%s'" % t for t in topics]
    return "\n".join(lines) + "\n"


class Collector:
    """A paho subscriber that records (topic, payload, qos) in arrival order."""

    def __init__(self, port, filters, client_id="", clean=True, version=paho.MQTTv311):
        self.messages, self.cond = [], threading.Condition()
        kw = {"clean_session": clean} if version != paho.MQTTv5 else {}
        self.client = paho.Client(client_id=client_id, protocol=version, **kw)
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([(f, 2) for f in filters])
        if not subscribed.wait(WAIT):
            raise RuntimeError("no SUBACK")

    def _on_message(self, _c, _u, m):
        with self.cond:
            self.messages.append((m.topic, m.payload.decode(), m.qos))
            self.cond.notify_all()

    def wait_for(self, n, timeout=WAIT):
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def publish(port, topic, payload, qos=1, retain=False):
    out = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                          "-m", payload, "-q", str(qos)] + (["-r"] if retain else []),
                         capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0, out.stderr


def wait_state(port, want, timeout=WAIT):
    """The retained $SYS/broker/connection/b1/state of mqttd reaches `want`."""
    wait_state_as(port, want, [], timeout)


def wait_state_as(port, want, credentials, timeout=WAIT):
    """wait_state with mosquitto_sub's `credentials` (-u, -P)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        out = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t",
                              "$SYS/broker/connection/b1/state", "-C", "1", "-W", "2"] +
                             credentials,
                             capture_output=True, text=True, timeout=WAIT)
        last = out.stdout.strip()
        if last == want:
            return
    raise AssertionError("bridge state %r, not %r" % (last, want))


TOPICS = [
    'out/# out 1 L/ R/',            # table row 1, outgoing
    'in/# in 2 L/ R/',              # table row 1, incoming, QoS 2
    'p2/+ out 1 L2/ ""',            # row 2, + wildcard
    'p3/# in 1 "" R3/',             # row 3
    'both/# both 1',                # row 4 (no prefix), both directions
    '"" both 0 local/one remote/one',  # row 5: one topic remapped
    'q0/# out 0 "" R0/',            # QoS 0
    'o2/# out 2',                   # QoS 2 outgoing
]


class BridgeTest(unittest.TestCase):
    """MQTT 3.1.1 to the remote, with try_private (the default)."""
    EXTRA = ""

    @classmethod
    def setUpClass(cls):
        cls.remote = Mosquitto()
        cls.local = Mqttd(bridge_config(cls.remote.port, TOPICS, cls.EXTRA))
        try:
            wait_state(cls.local.port, "1")
        except AssertionError:
            print(cls.local.logs(), "".join(cls.remote.log_lines))
            raise

    @classmethod
    def tearDownClass(cls):
        cls.local.close()
        cls.remote.close()

    def test_out_lines_map_local_to_remote_topics(self):
        sub = Collector(self.remote.port, ["R/#", "p2/#", "R0/#", "remote/one", "o2/#"])
        try:
            publish(self.local.port, "L/out/a/b", "m1", qos=2)   # line QoS 1 caps it
            publish(self.local.port, "L2/p2/x", "m2", qos=1)
            publish(self.local.port, "L2/p2/x/y", "no: + is one level", qos=1)
            publish(self.local.port, "q0/z", "m3", qos=0)
            publish(self.local.port, "local/one", "m4", qos=0)
            publish(self.local.port, "out/a", "no: without the local prefix", qos=1)
            publish(self.local.port, "o2/a", "m5", qos=2)
            sub.wait_for(5)
            time.sleep(QUIET)  # after the barrier: nothing else may arrive
            got = sorted(sub.messages)
            self.assertEqual(got, sorted([("R/out/a/b", "m1", 1), ("p2/x", "m2", 1),
                                          ("R0/q0/z", "m3", 0), ("remote/one", "m4", 0),
                                          ("o2/a", "m5", 2)]))
        finally:
            sub.close()

    def test_in_lines_map_remote_to_local_topics(self):
        sub = Collector(self.local.port, ["L/#", "p3/#", "local/one"])
        try:
            publish(self.remote.port, "R/in/x", "i1", qos=2)
            publish(self.remote.port, "R3/p3/y", "i2", qos=1)
            publish(self.remote.port, "remote/one", "i3", qos=0)
            publish(self.remote.port, "R/out/q", "no: an out line", qos=1)
            sub.wait_for(3)
            time.sleep(QUIET)
            self.assertEqual(sorted(sub.messages),
                             sorted([("L/in/x", "i1", 2), ("p3/y", "i2", 1),
                                     ("local/one", "i3", 0)]))
        finally:
            sub.close()

    def test_both_has_no_loop(self):
        """Exactly one copy each way: No Local on our local subscriptions, try_private towards
        Mosquitto (which then does not echo the bridge's own messages)."""
        local = Collector(self.local.port, ["both/#"])
        remote = Collector(self.remote.port, ["both/#"])
        try:
            for i in range(5):
                publish(self.local.port, "both/l", "l%d" % i)
                publish(self.remote.port, "both/r", "r%d" % i)
            local.wait_for(10)
            remote.wait_for(10)
            time.sleep(1.0)  # a loop would add copies within this time
            for got in (local.messages, remote.messages):
                self.assertEqual(sorted(p for _, p, _ in got),
                                 sorted(["l%d" % i for i in range(5)] +
                                        ["r%d" % i for i in range(5)]), got)
        finally:
            local.close()
            remote.close()


    def test_metrics_show_the_bridge(self):
        publish(self.local.port, "out/m", "counted")
        deadline = time.monotonic() + WAIT
        while True:
            text = urllib.request.urlopen("http://%s/metrics" % self.local.http,
                                          timeout=WAIT).read().decode()
            if 'mqttd_bridge_messages_sent_total{bridge="b1"}' in text or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling with a deadline
        self.assertIn('mqttd_bridge_connected{bridge="b1"} 1', text)
        self.assertIn('mqttd_bridge_connects_total{bridge="b1"} 1', text)
        sent = [l for l in text.splitlines()
                if l.startswith('mqttd_bridge_messages_sent_total{bridge="b1"}')]
        self.assertTrue(sent and float(sent[0].split()[-1]) >= 1, sent)


class BridgeV5Test(BridgeTest):
    """MQTT 5.0 to the remote, without try_private: No Local on the remote subscriptions is what
    keeps `both` from looping."""
    EXTRA = "protocol_version: mqttv50\ntry_private: false"


class RemoteDownTest(unittest.TestCase):
    N = 50

    def test_qos1_queued_while_remote_is_down_arrive_in_order(self):
        """Mosquitto stopped, N QoS 1 messages published locally (each PUBACKed by mqttd: on
        disk in the $bridge/b1 session's queue), mqttd killed with SIGKILL and restarted, then
        Mosquitto started again: a persistent subscriber on Mosquitto gets all N, in order,
        once each."""
        remote = Mosquitto()
        local = Mqttd(bridge_config(remote.port, ["seq/# out 1"]))
        try:
            wait_state(local.port, "1")
            # A persistent subscriber on the remote, then offline: Mosquitto keeps its queue.
            sub = Collector(remote.port, ["seq/#"], client_id="seq-sub", clean=False)
            sub.close()
            remote.stop()
            wait_state(local.port, "0")
            for i in range(self.N):
                publish(local.port, "seq/n", str(i), qos=1)
            local.kill()
            local.start()
            remote.start()
            wait_state(local.port, "1", timeout=3 * WAIT)
            sub = Collector(remote.port, ["seq/#"], client_id="seq-sub", clean=False)
            try:
                got = sub.wait_for(self.N, timeout=3 * WAIT)
                time.sleep(QUIET)
                self.assertEqual([p for _, p, _ in sub.messages],
                                 [str(i) for i in range(self.N)], local.logs())
            finally:
                sub.close()
        finally:
            local.close()
            remote.close()


class SecuredLocalTest(unittest.TestCase):
    def test_bridge_session_passes_the_local_password_file_and_acl(self):
        """mqttd with a password file (no anonymous clients) and an ACL that gives alice sec/#
        only: the bridge's own local session still connects and relays both ways (Mosquitto's
        bridges are not subject to its password file and ACL either)."""
        remote = Mosquitto()
        d = tempfile.mkdtemp(prefix="bridge-auth-")
        passwd, acl = os.path.join(d, "passwd"), os.path.join(d, "acl")
        subprocess.run(["mosquitto_passwd", "-c", "-b", passwd, "alice", "pw-alice"], check=True,
                       capture_output=True)
        with open(acl, "w") as f:
            f.write("user alice\ntopic readwrite sec/#\ntopic read $SYS/#\n")
        local = Mqttd("auth:\n  password_file: %s\n  acl_file: %s\n" % (passwd, acl) +
                      bridge_config(remote.port, ["sec/# both 1"]))
        try:
            wait_state_as(local.port, "1", ["-u", "alice", "-P", "pw-alice"])
            sub = Collector(remote.port, ["sec/#"])
            alice = paho.Client(client_id="alice-sub")
            alice.username_pw_set("alice", "pw-alice")
            got, subscribed = queue.Queue(), threading.Event()
            alice.on_message = lambda c, u, m: got.put((m.topic, m.payload.decode()))
            alice.on_subscribe = lambda *a: subscribed.set()
            alice.connect("127.0.0.1", local.port)
            alice.loop_start()
            alice.subscribe("sec/#", 1)
            self.assertTrue(subscribed.wait(WAIT))
            try:
                subprocess.run(["mosquitto_pub", "-p", str(local.port), "-u", "alice", "-P",
                                "pw-alice", "-t", "sec/out", "-m", "o", "-q", "1"], check=True)
                self.assertEqual(sub.wait_for(1)[0][:2], ("sec/out", "o"))
                publish(remote.port, "sec/in", "i")
                seen = [got.get(timeout=WAIT) for _ in range(2)]  # its own sec/out, then sec/in
                self.assertIn(("sec/in", "i"), seen)
            finally:
                alice.disconnect()
                alice.loop_stop()
                sub.close()
        finally:
            local.close()
            remote.close()
            shutil.rmtree(d, ignore_errors=True)


class TlsTest(unittest.TestCase):
    def test_bridge_over_tls_verifies_the_remote(self):
        d = tempfile.mkdtemp(prefix="bridge-certs-")
        c = certs.Certs(d)
        os.chmod(d, 0o755)  # Mosquitto run as root reads them as the mosquitto user
        for name in os.listdir(d):
            os.chmod(os.path.join(d, name), 0o644)
        port = harness.free_port()
        remote = Mosquitto(["listener %d 127.0.0.1" % port, "cafile %s" % c.path("ca.crt"),
                            "certfile %s" % c.path("server.crt"),
                            "keyfile %s" % c.path("server.key")], port=port)
        good = Mqttd(bridge_config(port, ["tls/# out 1"],
                                   "tls: {ca_file: %s, server_name: localhost}" % c.path("ca.crt")))
        bad = None
        try:
            wait_state(good.port, "1")
            sub = subprocess.Popen(
                ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "--cafile",
                 c.path("ca.crt"), "--insecure", "-t", "tls/#", "-C", "1", "-W", str(int(WAIT))],
                stdout=subprocess.PIPE, text=True)
            time.sleep(QUIET)  # mosquitto_sub subscribes; its -C 1 is the barrier below
            publish(good.port, "tls/a", "over-tls")
            out, _ = sub.communicate(timeout=WAIT + 5)
            self.assertEqual(out.strip(), "over-tls")
            # A CA that did not sign the remote's certificate: never connected.
            bad = Mqttd(bridge_config(port, ["tls/# out 1"],
                                      "tls: {ca_file: %s}" % c.path("other-ca.crt")))
            deadline = time.monotonic() + WAIT
            while "TLS handshake" not in bad.logs() and time.monotonic() < deadline:
                time.sleep(0.1)  # polling the log with a deadline
            self.assertIn("TLS handshake", bad.logs())
            wait_state(bad.port, "", timeout=3)  # no state "1": it never connected
        finally:
            good.close()
            if bad:
                bad.close()
            remote.close()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if harness.is_mosquitto():
        raise SystemExit(0)  # bridges of mqttd: nothing to check against Mosquitto itself
    unittest.main()
