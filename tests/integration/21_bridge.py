#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Bridges (issue 16, node/bridge, docs/bridges.md) against a real Mosquitto that the test
starts (Debian `mosquitto` on a free loopback port with a generated conf): out, in and both
directions with Mosquitto's topic lines and every valid row of its prefix table, QoS 0/1/2,
wildcards, exact message counts with `both` (no loop), the $SYS state topic, QoS 1 messages
queued while the remote is down (and across a kill -9 of mqttd) arriving in order, and TLS to
a Mosquitto TLS listener; `mqttctl bridges` (state, counters, queue, last error), the remote's
refusal logged once with its reason, the remote's Receive Maximum respected, and QoS 2 exactly
once across a connection cut after the remote's PUBREC (a proxy in the test cuts it). mqttd
only."""

import json
import os
import queue
import shutil
import signal
import socket
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

    def __init__(self, extra=(), port=None, anonymous=True):
        self.dir = tempfile.mkdtemp(prefix="bridge-remote-")
        os.chmod(self.dir, 0o777)
        self.port = port or harness.free_port()
        self.extra = list(extra)
        self.anonymous = anonymous
        self.proc = None
        self.log_lines = []
        self.start()

    def conf(self):
        return "\n".join(self.extra or ["listener %d 127.0.0.1" % self.port]) + "\n" + "\n".join([
            "allow_anonymous %s" % ("true" if self.anonymous else "false"),
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

    def __init__(self, config_text, args=()):
        self.args = list(args)
        self.cluster = None  # the cluster (admin) address, with --cluster-listen in args
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
             "--sys-interval", "1"] + self.args,
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
                self.cluster = words.get("cluster")
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


# A node that is a cluster of one: the admin service (`mqttctl`) is on the cluster port.
CLUSTER_OF_ONE = ["--cluster-listen", "127.0.0.1:0"]


def mqttctl_bin():
    return os.environ.get("MQTTCTL_BIN") or os.path.join(os.path.dirname(harness.broker_bin()),
                                                         "mqttctl")


def bridge_view(local, name="b1"):
    """Bridge `name` in `mqttctl --json bridges` asked of `local` (proto3 JSON: uint64 as
    strings, an unset optional absent)."""
    out = subprocess.run([mqttctl_bin(), "--server", local.cluster, "--json", "bridges"],
                         capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0, out.stderr
    return {b["name"]: b for b in json.loads(out.stdout).get("bridges", [])}[name]


def wait_bridge(local, predicate, what, timeout=WAIT):
    """Polls `mqttctl bridges` until `predicate(bridge)`; returns that view."""
    deadline = time.monotonic() + timeout
    while True:
        view = bridge_view(local)
        if predicate(view):
            return view
        if time.monotonic() > deadline:
            raise AssertionError("%s: %s\n%s" % (what, json.dumps(view, indent=1),
                                                 local.logs()[-3000:]))
        time.sleep(0.2)  # polling with a deadline


def publish_burst(port, topic, payloads, qos):
    """Publishes every payload at once (paho with a window as large as the burst); returns once
    mqttd acknowledged them all."""
    client = paho.Client(client_id="", protocol=paho.MQTTv311)
    client.max_inflight_messages_set(len(payloads))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, p, qos) for p in payloads]
        deadline = time.monotonic() + WAIT
        while not all(i.is_published() for i in infos):
            assert time.monotonic() < deadline, "burst not acknowledged"
            time.sleep(0.05)  # polling with a deadline
    finally:
        client.disconnect()
        client.loop_stop()


def packet_length(buf):
    """Length of the whole MQTT packet at the start of `buf`, None if incomplete."""
    length, shift = 0, 0
    for i in range(1, min(len(buf), 5)):
        length += (buf[i] & 0x7F) << shift
        shift += 7
        if not buf[i] & 0x80:
            return i + 1 + length if len(buf) >= i + 1 + length else None
    return None


class CuttingProxy:
    """A TCP proxy to the remote's `port` that cuts the first connection through it at the
    `nth` PUBREC the remote sends (or, `incoming`, the bridge sends): after passing it on
    (`forward`) or instead of it. Cut is closed, or with `stall` silent both ways (the
    connection stays open). Later connections are relayed untouched."""

    def __init__(self, port, nth, forward, stall=False, incoming=False):
        self.target, self.nth, self.forward, self.stall = port, nth, forward, stall
        self.incoming = incoming
        self.pubrecs = 0
        self.cut = threading.Event()
        self.closed = threading.Event()
        self.connections = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                bridge, _ = self.listener.accept()
            except OSError:
                return
            remote = socket.create_connection(("127.0.0.1", self.target))
            first = self.connections == 0
            self.connections += 1
            for args in ((bridge, remote, False, first), (remote, bridge, True, first)):
                threading.Thread(target=self._pipe, args=args, daemon=True).start()

    def _pipe(self, src, dst, from_remote, first):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if first and self.stall and self.cut.is_set():
                    continue  # dropped: the stalled connection passes nothing more
                if from_remote == self.incoming:  # not the side whose PUBRECs are counted
                    dst.sendall(data)
                    continue
                buf += data
                while (n := packet_length(buf)) is not None:
                    packet, buf = buf[:n], buf[n:]
                    if packet[0] >> 4 == 5 and not self.cut.is_set():  # PUBREC
                        self.pubrecs += 1
                        if self.pubrecs == self.nth:
                            if self.forward:
                                dst.sendall(packet)
                            self.cut.set()
                            if self.stall:
                                self.closed.wait()
                            return
                    dst.sendall(packet)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self):
        self.closed.set()
        self.listener.close()


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
                sub.wait_for(self.N, timeout=3 * WAIT)
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


class MqttctlBridgesTest(unittest.TestCase):
    """`mqttctl bridges` (the admin RPC Bridges) of a node that is a cluster of one."""
    EXTRA = ""
    PROTOCOL = "3.1.1"

    def test_state_counters_queue_and_last_error_follow_the_remote(self):
        remote = Mosquitto()
        local = Mqttd(bridge_config(remote.port, ["ctl/# out 1", "ctlin/# in 1"], self.EXTRA),
                      args=CLUSTER_OF_ONE)
        try:
            wait_state(local.port, "1")
            view = wait_bridge(local, lambda b: b["connected"], "connected")
            self.assertEqual(
                (view["running"], view["nodeId"], view["ownerNodeId"], view["remoteAddress"],
                 view["protocolVersion"], view["lastError"], view["failedAttempts"]),
                (True, "bridge-node", "bridge-node", "127.0.0.1:%d" % remote.port,
                 self.PROTOCOL, "", "0"))
            self.assertGreater(view["sendWindow"], 0)
            sub = Collector(remote.port, ["ctl/#"])
            try:
                publish(local.port, "ctl/a", "o1")
                publish(local.port, "ctl/a", "o2")
                self.assertEqual(len(sub.wait_for(2)), 2)
            finally:
                sub.close()
            publish(remote.port, "ctlin/b", "i1")
            wait_bridge(local, lambda b: int(b["messagesOut"]) == 2 and
                        int(b["messagesIn"]) == 1, "2 out, 1 in")

            remote.stop()
            view = wait_bridge(local, lambda b: not b["connected"] and
                               int(b["failedAttempts"]) >= 3, "3 failed attempts")
            self.assertIn("Connection refused", view["lastError"])
            self.assertGreater(int(view["lastErrorUnixMs"]), 0)
            # Logged once, not once per retry.
            self.assertEqual(local.logs().count("connecting: Connection refused"), 1,
                             local.logs())
            for i in range(3):
                publish(local.port, "ctl/q", "q%d" % i)
            wait_bridge(local, lambda b: b.get("queuedMessages") == "3",
                        "3 messages queued in $bridge/b1 while the remote is down")

            remote.start()
            wait_bridge(local, lambda b: b["connected"] and b.get("queuedMessages") == "0" and
                        int(b["messagesOut"]) == 5 and b["failedAttempts"] == "0",
                        "connected again, the queue sent")
            self.assertIn("after ", local.logs())  # "connected ... after N failed attempts"
        finally:
            local.close()
            remote.close()


class MqttctlBridgesV5Test(MqttctlBridgesTest):
    EXTRA = "protocol_version: mqttv50\ntry_private: false"
    PROTOCOL = "5.0"


class RefusalTest(unittest.TestCase):
    def check_refusal(self, extra, reason):
        """A remote that refuses every CONNECT (no anonymous clients): the reason code and its
        name in the log once, however many retries, and as the last error of the bridge."""
        remote = Mosquitto(anonymous=False)
        local = Mqttd(bridge_config(remote.port, ["r/# out 1"], extra), args=CLUSTER_OF_ONE)
        try:
            view = wait_bridge(local, lambda b: int(b["failedAttempts"]) >= 3,
                               "3 refused attempts", timeout=3 * WAIT)
            self.assertFalse(view["connected"])
            self.assertIn("the remote refused the connection: CONNACK " + reason,
                          view["lastError"])
            self.assertEqual(local.logs().count("CONNACK " + reason), 1, local.logs())
        finally:
            local.close()
            remote.close()

    def test_v5_refusal_reason_code_and_name(self):
        self.check_refusal("protocol_version: mqttv50", "0x87 Not authorized")

    def test_v311_refusal_return_code_and_name(self):
        self.check_refusal("", "0x05 Connection refused, not authorized")

    def test_v5_disconnect_from_the_remote_is_logged_with_its_reason(self):
        """A 5.0 remote (a fake one in the test: Mosquitto 2.0 closes without a DISCONNECT) that
        accepts the CONNECT, then sends DISCONNECT 0x8B with a Reason String: the reason code,
        its name and the string in the log and as the bridge's last error."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        threading.Thread(target=self.accept_then_disconnect, args=(listener,),
                         daemon=True).start()
        local = Mqttd(bridge_config(listener.getsockname()[1], ["r/# out 1"],
                                    "protocol_version: mqttv50\ntry_private: false"),
                      args=CLUSTER_OF_ONE)
        want = "DISCONNECT from the peer: 0x8b Server shutting down (maintenance)"
        try:
            view = wait_bridge(local, lambda b: want in b["lastError"], "the DISCONNECT's reason")
            self.assertEqual(view["protocolVersion"], "5.0")
            self.assertIn(want, local.logs())
        finally:
            local.close()
            listener.close()

    @staticmethod
    def accept_then_disconnect(listener):
        connack = bytes([0x20, 3, 0, 0, 0])  # 5.0 CONNACK: no session, Success, no properties
        reason = b"maintenance"
        props = bytes([0x1F]) + len(reason).to_bytes(2, "big") + reason  # Reason String
        disconnect = bytes([0xE0, 2 + len(props), 0x8B, len(props)]) + props
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)  # the CONNECT
                    conn.sendall(connack + disconnect)
                    conn.recv(65536)  # until the bridge closes
                except OSError:
                    pass


class IncomingQos2AcrossCutTest(unittest.TestCase):
    """QoS 2 incoming, the connection cut at the 3rd PUBREC the bridge sends the remote (this
    node has the message): the remote, its session persistent, re-sends PUBREL or PUBLISH (DUP)
    with the same ids, which reach this node unchanged; its stored inbound QoS 2 ids recognise
    the PUBLISH [MQTT-4.3.3-10]: a local subscriber gets every message once, in order."""
    N = 10

    def run_cut(self, forward):
        remote = Mosquitto()
        proxy = CuttingProxy(remote.port, nth=3, forward=forward, incoming=True)
        local = Mqttd(bridge_config(proxy.port, ["i2/# in 2"]))
        try:
            wait_state(local.port, "1")
            sub = Collector(local.port, ["i2/#"])
            try:
                publish_burst(remote.port, "i2/m", [str(i) for i in range(self.N)], qos=2)
                self.assertTrue(proxy.cut.wait(WAIT), "no cut")
                sub.wait_for(self.N, timeout=3 * WAIT)
                time.sleep(1.0)  # after a reconnect (restart_timeout 1 s): no duplicate comes
                self.assertEqual([p for _, p, _ in sub.messages],
                                 [str(i) for i in range(self.N)],
                                 local.logs() + "".join(remote.log_lines[-200:]))
            finally:
                sub.close()
        finally:
            local.close()
            proxy.close()
            remote.close()

    def test_cut_after_the_remote_got_the_pubrec(self):
        self.run_cut(forward=True)

    def test_cut_before_the_remote_got_the_pubrec(self):
        self.run_cut(forward=False)

    def test_clean_remote_session_releases_the_exchanges_it_cut(self):
        """With a clean remote session the remote forgets the exchanges cut midway and will not
        send their PUBREL; the bridge releases them at this node itself. Else this node would
        keep their ids and take the remote's next messages under the same ids (Mosquitto
        numbers a new session's messages from 1 again) as duplicates: lost."""
        remote = Mosquitto()
        proxy = CuttingProxy(remote.port, nth=3, forward=False, incoming=True)
        local = Mqttd(bridge_config(proxy.port, ["i2/# in 2"], "clean_session: true"))
        try:
            wait_state(local.port, "1")
            sub = Collector(local.port, ["i2/#"])
            try:
                publish_burst(remote.port, "i2/a", ["a%d" % i for i in range(self.N)], qos=2)
                self.assertTrue(proxy.cut.wait(WAIT), "no cut")
                deadline = time.monotonic() + WAIT
                while local.logs().count("bridge b1 connected") < 2:
                    self.assertLess(time.monotonic(), deadline, local.logs())
                    time.sleep(0.1)  # polling the log with a deadline
                # The remote has the bridge's new subscription once a probe comes through.
                deadline = time.monotonic() + WAIT
                while not any(t == "i2/probe" for t, _, _ in sub.messages):
                    self.assertLess(time.monotonic(), deadline, local.logs())
                    publish(remote.port, "i2/probe", "p", qos=0)
                    time.sleep(0.2)  # polling with a deadline
                second = ["b%d" % i for i in range(self.N)]
                publish_burst(remote.port, "i2/b", second, qos=2)
                deadline = time.monotonic() + 2 * WAIT
                while [p for t, p, _ in sub.messages if t == "i2/b"] != second and \
                        time.monotonic() < deadline:
                    time.sleep(0.1)  # polling with a deadline
                self.assertEqual([p for t, p, _ in sub.messages if t == "i2/b"], second,
                                 local.logs())
            finally:
                sub.close()
        finally:
            local.close()
            proxy.close()
            remote.close()


class ReceiveMaximumTest(unittest.TestCase):
    N = 40

    def test_remote_receive_maximum_bounds_the_outgoing_window(self):
        """Mosquitto with max_inflight_messages 2 sends Receive Maximum 2 in its 5.0 CONNACK and
        answers a QoS 2 PUBLISH beyond it with PUBREC 0x97 Quota exceeded (the message is then
        lost). A burst of N QoS 2 messages through a 5.0 bridge: all arrive, in order, once
        [MQTT-3.3.4-7]; `mqttctl bridges` shows the window."""
        port = harness.free_port()
        remote = Mosquitto(["listener %d 127.0.0.1" % port, "max_inflight_messages 2"], port=port)
        local = Mqttd(bridge_config(port, ["rm/# out 2"], "protocol_version: mqttv50\n"
                                    "try_private: false"), args=CLUSTER_OF_ONE)
        try:
            wait_state(local.port, "1")
            self.assertEqual(wait_bridge(local, lambda b: b["connected"], "up")["sendWindow"], 2)
            sub = Collector(remote.port, ["rm/#"])
            try:
                publish_burst(local.port, "rm/x", [str(i) for i in range(self.N)], qos=2)
                sub.wait_for(self.N, timeout=3 * WAIT)
                time.sleep(QUIET)
                self.assertEqual([p for _, p, _ in sub.messages],
                                 [str(i) for i in range(self.N)], local.logs())
            finally:
                sub.close()
            self.assertEqual(wait_bridge(local, lambda b: b["connected"], "up")["connects"], "1")
        finally:
            local.close()
            remote.close()


class Qos2AcrossCutTest(unittest.TestCase):
    """QoS 2 outgoing, the connection to the remote cut at the 3rd PUBREC of a burst of N (a
    proxy between the bridge and Mosquitto): the remote session is persistent (clean_session
    false), the local `$bridge/b1` session re-sends PUBREL for what the remote had PUBREC'd and
    PUBLISH (DUP, same packet id) for the rest [MQTT-4.4.0-1], which the remote recognises
    [MQTT-4.3.3-10]: every message reaches the remote's subscriber exactly once, in order."""
    N = 10

    def run_cut(self, forward, extra=""):
        remote = Mosquitto()
        proxy = CuttingProxy(remote.port, nth=3, forward=forward)
        local = Mqttd(bridge_config(proxy.port, ["x2/# out 2"], extra))
        try:
            wait_state(local.port, "1")
            sub = Collector(remote.port, ["x2/#"])
            try:
                publish_burst(local.port, "x2/m", [str(i) for i in range(self.N)], qos=2)
                self.assertTrue(proxy.cut.wait(WAIT), "no cut")
                sub.wait_for(self.N, timeout=3 * WAIT)
                time.sleep(1.0)  # after a reconnect (restart_timeout 1 s): no duplicate comes
                self.assertEqual([p for _, p, _ in sub.messages],
                                 [str(i) for i in range(self.N)],
                                 local.logs() + "".join(remote.log_lines[-200:]))
            finally:
                sub.close()
        finally:
            local.close()
            proxy.close()
            remote.close()

    def test_cut_after_the_bridge_got_the_pubrec(self):
        self.run_cut(forward=True)

    def test_mqttd_killed_after_the_bridge_got_the_pubrec(self):
        """The stages of the exchanges are the local session's, on disk: the connection stalls
        after the 3rd PUBREC reached the bridge, mqttd is killed (SIGKILL) and started again,
        and the remote still gets every message once, in order."""
        remote = Mosquitto()
        proxy = CuttingProxy(remote.port, nth=3, forward=True, stall=True)
        local = Mqttd(bridge_config(proxy.port, ["x2/# out 2"]))
        try:
            wait_state(local.port, "1")
            sub = Collector(remote.port, ["x2/#"])
            try:
                publish_burst(local.port, "x2/m", [str(i) for i in range(self.N)], qos=2)
                self.assertTrue(proxy.cut.wait(WAIT), "no cut")
                time.sleep(QUIET)  # the broker takes the PUBREC and stores the exchange's stage
                local.kill()
                local.start()
                sub.wait_for(self.N, timeout=3 * WAIT)
                time.sleep(1.0)  # no duplicate comes
                self.assertEqual([p for _, p, _ in sub.messages],
                                 [str(i) for i in range(self.N)],
                                 local.logs() + "".join(remote.log_lines[-200:]))
            finally:
                sub.close()
        finally:
            local.close()
            proxy.close()
            remote.close()

    def test_cut_before_the_bridge_got_the_pubrec(self):
        self.run_cut(forward=False)

    def test_cut_after_the_pubrec_v5(self):
        self.run_cut(forward=True, extra="protocol_version: mqttv50\ntry_private: false")

    def test_cut_before_the_pubrec_v5(self):
        self.run_cut(forward=False, extra="protocol_version: mqttv50\ntry_private: false")


if __name__ == "__main__":
    if harness.is_mosquitto():
        raise SystemExit(0)  # bridges of mqttd: nothing to check against Mosquitto itself
    unittest.main()
