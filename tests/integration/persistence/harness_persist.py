# SPDX-License-Identifier: Apache-2.0
"""Restart and crash helpers for the persistence tests (issue 5), on top of ../harness.py and
../v5/harness5.py (both re-exported; neither is modified).

Node: one broker process on a fixed port and a fixed data directory that outlive restarts.
  - mqttd: `mqttd --listen 127.0.0.1:PORT --data-dir DIR --node-id ID --log-level info ...`,
    ready when its stdout prints a line with `ready` and `mqtt=HOST:PORT`.
  - Mosquitto (MQTTD_BIN=/usr/sbin/mosquitto): generated config with `persistence true`,
    `persistence_location DIR/`, `autosave_interval 1`; ready on its "running" line.
  crash() is SIGKILL for mqttd. Mosquitto only saves its database periodically and at exit,
  so under Mosquitto crash() is a graceful SIGTERM (that validates the test logic, not the
  crash durability). PERSIST_CRASH=kill|term overrides.

Publisher / Subscriber: raw-socket MQTT clients with persistent sessions that survive broker
restarts by reconnecting (clean session 0 / clean start 0) and re-sending unacknowledged
PUBLISH and PUBREL with their original packet ids [MQTT-4.4.0-1]. The subscriber keeps its
inbound QoS 2 packet ids across reconnects (receiver "method B", 4.3.3), so exactly-once is
end to end. Every wait has a deadline; the only sleeps are reconnect back-off while the node is
down and the random jitter that places a kill.
"""

import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "v5"))
sys.path.insert(0, os.path.dirname(HERE))

import harness  # noqa: E402
import harness5  # noqa: E402
from harness5 import *  # noqa: E402,F401,F403
from harness5 import (CONNACK, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SESSION_EXPIRY_INTERVAL,  # noqa: E402
                      WAIT, Closed, Publish5, RawClient, RawClient5, connect_packet,
                      connect5_packet, pid_packet, publish_packet, subscribe_packet,
                      subscribe5_packet, sub_options, unique)

RESTART_WAIT = 30.0  # a node must be back (recovery included) within this


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def crash_mode():
    mode = os.environ.get("PERSIST_CRASH")
    if mode:
        if mode not in ("kill", "term"):
            raise ValueError("PERSIST_CRASH must be kill or term")
        return mode
    return "term" if harness.is_mosquitto() else "kill"


free_port = harness.free_port


class StartFailed(RuntimeError):
    def __init__(self, msg, returncode, stdout, stderr):
        super().__init__(msg)
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


# ----------------------------------------------------------------------------------------
# Node: a broker process restarted on the same port and data directory
# ----------------------------------------------------------------------------------------


class Node:
    """host, port (stable across restarts), data_dir, start(), crash(), kill(), stop()."""

    host = "127.0.0.1"

    def __init__(self, extra_args=(), data_dir=None, create_data_dir=True, node_id=None):
        self.root = tempfile.mkdtemp(prefix="mqttd-persist-")
        os.chmod(self.root, 0o755)
        self.data_dir = data_dir or os.path.join(self.root, "data")
        if create_data_dir and not os.path.exists(self.data_dir):
            os.mkdir(self.data_dir)
        if harness.is_mosquitto() and os.path.isdir(self.data_dir):
            os.chmod(self.data_dir, 0o777)  # mosquitto drops root for its own user
        self.extra_args = list(extra_args)
        self.node_id = node_id or unique("node")
        self.port = free_port()
        self.proc = None
        self.starts = 0
        self._stderr = []  # every generation's stderr, in order
        self._stdout = []

    # -- logs --------------------------------------------------------------------------
    @property
    def logs(self):
        return "".join(self._stderr)

    def log_tail(self, n=40):
        return "".join(self._stderr[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- process -----------------------------------------------------------------------
    def command(self):
        if harness.is_mosquitto():
            return [harness.broker_bin(), "-c", self._mosquitto_conf()]
        return [harness.broker_bin(), "--listen", "%s:%d" % (self.host, self.port),
                "--data-dir", self.data_dir, "--node-id", self.node_id,
                "--log-level", "info", "--http-listen", "127.0.0.1:0"] + self.extra_args

    def _mosquitto_conf(self):
        mapping = {"--max-inflight": "max_inflight_messages",
                   "--max-queued-messages": "max_queued_messages"}
        conf = ["listener %d %s" % (self.port, self.host), "allow_anonymous true",
                "persistence true", "persistence_location %s/" % self.data_dir,
                "autosave_interval 1", "log_dest stderr", "log_type error", "log_type warning",
                "log_type notice", "log_type information",
                "connection_messages true"]
        if os.environ.get("PERSIST_MOSQUITTO_DEBUG"):
            conf.append("log_type all")
        for k, v in harness._option_map(self.extra_args).items():
            if k not in mapping:
                raise ValueError("no mosquitto mapping for option " + k)
            conf.append("%s %s" % (mapping[k], v))
        path = os.path.join(self.root, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        os.chmod(path, 0o644)
        return path

    def start(self, timeout=RESTART_WAIT):
        """Start and wait until it accepts clients. Retries on a new port if the port was taken
        by someone else meanwhile (clients read node.port when they (re)connect)."""
        assert not self.alive(), "node already running"
        for _attempt in range(5):
            try:
                return self._start_once(timeout)
            except StartFailed as e:
                if "in use" not in (e.stderr + e.stdout).lower():
                    raise
                self.port = free_port()
        raise RuntimeError("could not find a free port for the node")

    def _start_once(self, timeout):
        out_lines, err_lines, out_q, err_q = [], [], queue.Queue(), queue.Queue()
        cmd = self.command()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.starts += 1
        self._stderr.append("==== start %d: %s\n" % (self.starts, " ".join(cmd)))
        err_sink = _TeeList(self._stderr, err_lines)
        out_sink = _TeeList(self._stdout, out_lines)
        threading.Thread(target=harness._pump, args=(self.proc.stderr, err_sink, err_q),
                         daemon=True).start()
        threading.Thread(target=harness._pump, args=(self.proc.stdout, out_sink, out_q),
                         daemon=True).start()
        mosq = harness.is_mosquitto()
        lines_q = err_q if mosq else out_q
        deadline = time.monotonic() + timeout
        ready = False
        while time.monotonic() < deadline:
            try:
                line = lines_q.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and lines_q.empty():
                    break
                continue
            if line is None:
                break
            if mosq and "running" in line and "mosquitto version" in line:
                ready = harness._port_accepts(self.port, deadline)
                break
            if not mosq and "ready" in line:
                for word in line.split():
                    if word.startswith("mqtt="):
                        host, _, port = word[len("mqtt="):].rpartition(":")
                        if int(port) != self.port:
                            raise AssertionError("node listens on %s, asked for port %d"
                                                 % (word, self.port))
                        ready = True
                break
        if ready:
            return self
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        _drain_pumps(err_q, out_q)
        raise StartFailed("node did not become ready within %.0fs (exit %s)\nstdout: %s\n"
                          "stderr: %s" % (timeout, rc, "".join(out_lines), "".join(err_lines)),
                          rc, "".join(out_lines), "".join(err_lines))

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout=WAIT):
        """SIGTERM; returns the exit code (SIGKILL after timeout)."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def crash(self):
        """The restart-test 'crash': SIGKILL (mqttd) or graceful SIGTERM (Mosquitto)."""
        if crash_mode() == "kill":
            self.kill()
        else:
            rc = self.stop()
            if rc != 0:
                raise AssertionError("graceful stop exited %s:\n%s" % (rc, self.log_tail()))

    def restart(self):
        self.crash()
        return self.start()

    def cleanup(self):
        if self.proc is not None and self.alive():
            self.proc.kill()
            self.proc.wait()
        if os.environ.get("MQTT_TEST_LOGS"):
            sys.stderr.write("---- node log ----\n" + self.logs)
        shutil.rmtree(self.root, ignore_errors=True)


class _TeeList(list):
    """A list whose append also appends to two other lists (harness._pump's sink)."""

    def __init__(self, a, b):
        super().__init__()
        self._a, self._b = a, b

    def append(self, x):
        self._a.append(x)
        self._b.append(x)


def _drain_pumps(*qs, timeout=2.0):
    """Wait (bounded) until the pump threads have read their stream to EOF."""
    deadline = time.monotonic() + timeout
    for q in qs:
        while time.monotonic() < deadline:
            try:
                if q.get(timeout=0.1) is None:
                    break
            except queue.Empty:
                pass


def run_expect_refusal(cmd, timeout=WAIT):
    """Run a node command that must refuse to start. Returns (returncode, stdout, stderr).
    Raises AssertionError if it printed a ready line (it is then killed) or neither exited nor
    became ready within timeout."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err, out_q = [], [], queue.Queue()
    threading.Thread(target=harness._pump, args=(proc.stdout, out, out_q), daemon=True).start()
    threading.Thread(target=harness._pump, args=(proc.stderr, err), daemon=True).start()
    deadline = time.monotonic() + timeout
    started = False
    while time.monotonic() < deadline:
        try:
            line = out_q.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            break
        if "ready" in line:
            started = True
            break
    if not started:
        try:  # stdout reached EOF (or the deadline passed): the process should be exiting
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    if started or proc.poll() is None:
        proc.kill()
        proc.wait()
        _drain_pumps(out_q)
        raise AssertionError("%s: %r\nstdout: %s\nstderr: %s" % (
            "node started and accepted clients instead of refusing" if started else
            "node neither refused nor became ready within %.0fs" % timeout,
            cmd, "".join(out), "".join(err)))
    rc = proc.wait(WAIT)
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end and not proc.stderr.closed:
        time.sleep(0.01)  # bounded wait for the pump thread to reach EOF
    return rc, "".join(out), "".join(err)


def mqttd_command(data_dir, port=None, node_id=None, extra=()):
    return [harness.broker_bin(), "--listen", "127.0.0.1:%d" % (port or free_port()),
            "--data-dir", data_dir, "--node-id", node_id or unique("node"),
            "--log-level", "info", "--http-listen", "127.0.0.1:0"] + list(extra)


def connect_retry(node, make_client, deadline):
    """Connect (TCP + CONNECT/CONNACK via make_client(sock-less RawClient)) until it works or
    the deadline passes; retries while the node is down or restarting."""
    last = None
    while time.monotonic() < deadline:
        c = None
        try:
            c = RawClient(node.host, node.port, timeout=WAIT)
            ack = make_client(c)
            return c, ack
        except (OSError, Closed, TimeoutError, AssertionError) as e:
            last = e
            if c is not None:
                c.close()
            time.sleep(0.05)  # back-off while the node is down, not synchronisation
    raise AssertionError("could not reconnect to %s:%d: %r" % (node.host, node.port, last))


def _read_packet(client, timeout):
    """The next packet of a RawClient (pending first); None on timeout."""
    try:
        return client.recv(timeout)
    except TimeoutError:
        return None


# ----------------------------------------------------------------------------------------
# Publisher: N numbered messages, windowed, surviving restarts
# ----------------------------------------------------------------------------------------


def seq_payload(seq, pad=b""):
    return b"%08d" % seq + pad


def payload_seq(payload):
    return int(payload[:8])


class Publisher(threading.Thread):
    """Publishes seq 0..n-1 to topic at qos over a 3.1.1 clean-session-0 connection with up to
    `window` messages unacknowledged. On a lost connection it reconnects (until RESTART_WAIT
    after the loss), requires Session Present 1 [MQTT-3.2.2-2] and re-sends unacknowledged
    PUBLISH (DUP 1, same packet id) and PUBREL [MQTT-4.4.0-1], then goes on.

    acked: seqs the broker acknowledged (PUBACK; for QoS 2 PUBREC, when it took ownership).
    completed: count of finished exchanges. sends[seq]: how many times PUBLISH was sent."""

    def __init__(self, node, topic, n, qos, window=10, pad=b""):
        super().__init__(daemon=True)
        self.node, self.topic, self.n, self.qos, self.window = node, topic, n, qos, window
        self.pad = pad
        self.client_id = unique("pub")
        self.cond = threading.Condition()
        self.acked = set()
        self.completed = 0
        self.sends = [0] * n
        self.reconnects = 0
        self.error = None
        self.done = threading.Event()
        self._halt = threading.Event()
        self._inflight = {}  # seq -> "pub" | "rel", insertion (= send) order
        self._next = 0
        self._c = None

    @staticmethod
    def pid_of(seq):
        return seq % 65535 + 1

    def acked_count(self):
        with self.cond:
            return len(self.acked)

    def wait_acked(self, count, timeout, reconnects=0):
        """Until `count` messages are acknowledged on a connection made after `reconnects`
        reconnections (or the publisher ended)."""
        with self.cond:
            return self.cond.wait_for(
                lambda: (len(self.acked) >= count and self.reconnects >= reconnects)
                or self.error or self.done.is_set(), timeout)

    def stop(self):
        self._halt.set()
        self.join(WAIT)
        if self._c:
            self._c.close()

    def _connect(self, first):
        deadline = time.monotonic() + (WAIT if first else RESTART_WAIT)
        self._c, (sp, _rc) = connect_retry(
            self.node, lambda c: c.connect(self.client_id, clean=False), deadline)
        if first:
            if sp != 0:
                raise AssertionError("publisher: new session with Session Present 1")
            return
        with self.cond:
            self.reconnects += 1
            self.cond.notify_all()
        if sp != 1:
            raise AssertionError("publisher %s: Session Present 0 after restart: its "
                                 "persistent session was lost [MQTT-3.2.2-2]" % self.client_id)
        for seq, state in list(self._inflight.items()):  # original order [MQTT-4.4.0-1]
            if state == "pub":
                self._send_publish(seq, dup=True)
            else:
                self._c.send(pid_packet(PUBREL, self.pid_of(seq)))

    def _send_publish(self, seq, dup=False):
        self.sends[seq] += 1
        self._c.send(publish_packet(self.topic, seq_payload(seq, self.pad), self.qos,
                                    dup=dup, pid=self.pid_of(seq)))

    def _seq_of(self, pid):
        for seq in self._inflight:
            if self.pid_of(seq) == pid:
                return seq
        raise AssertionError("publisher: ack for packet id %d not in flight (%r)"
                             % (pid, list(self._inflight)))

    def run(self):
        try:
            self._connect(first=True)
            while not self._halt.is_set():
                try:
                    self._step()
                except (OSError, Closed):
                    self._c.close()
                    self._connect(first=False)
                if self.completed == self.n:
                    break
        except Exception as e:  # noqa: BLE001
            self.error = e
        finally:
            self.done.set()
            with self.cond:
                self.cond.notify_all()

    def _step(self):
        while len(self._inflight) < self.window and self._next < self.n:
            seq = self._next
            self._next += 1
            self._inflight[seq] = "pub"
            self._send_publish(seq)
        p = _read_packet(self._c, 0.2)
        if p is None:
            return
        if p.type == PUBACK and self.qos == 1:
            seq = self._seq_of(p.pid)
            del self._inflight[seq]
            with self.cond:
                self.acked.add(seq)
                self.completed += 1
                self.cond.notify_all()
        elif p.type == PUBREC and self.qos == 2:
            seq = self._seq_of(p.pid)
            self._inflight[seq] = "rel"
            with self.cond:
                self.acked.add(seq)
                self.cond.notify_all()
            self._c.send(pid_packet(PUBREL, p.pid))
        elif p.type == PUBCOMP and self.qos == 2:
            seq = self._seq_of(p.pid)
            if self._inflight[seq] != "rel":
                raise AssertionError("publisher: PUBCOMP before PUBREC for seq %d" % seq)
            del self._inflight[seq]
            with self.cond:
                self.completed += 1
                self.cond.notify_all()
        else:
            raise AssertionError("publisher: unexpected %r" % p)


# ----------------------------------------------------------------------------------------
# Subscriber: persistent session, reconnects after restarts, method-B QoS 2 receiver
# ----------------------------------------------------------------------------------------


class Subscriber(threading.Thread):
    """A persistent-session subscriber (3.1.1 clean session 0, or 5.0 with Session Expiry
    Interval 3600 and Clean Start 0). subscribe() once, then either drain() it later (offline
    test) or start() it to consume continuously across restarts (online test).

    got: list of (seq, dup flag) delivered to the application, in arrival order. QoS 2: a
    PUBLISH whose packet id awaits PUBREL is not delivered again (4.3.3 method B); the set of
    such ids survives reconnects, as the session state of a clean-session-0 client must.
    ack_lag: acknowledge a message only when `ack_lag` newer ones have arrived (or the line
    goes quiet), so that messages are in flight when a kill hits."""

    def __init__(self, node, topic, qos, version=4, ack_lag=0, name=None):
        super().__init__(daemon=True)
        self.node, self.topic, self.qos, self.version = node, topic, qos, version
        self.ack_lag = ack_lag
        self.client_id = unique(name or ("sub%d" % version))
        self.cond = threading.Condition()
        self.got = []
        self.seen = set()
        self.redelivered_publish = 0  # QoS 2 PUBLISH for an id awaiting PUBREL
        self.reconnects = 0
        self.error = None
        self._awaiting_rel = set()  # inbound QoS 2 packet ids (session state)
        self._unacked = []  # packets received, acknowledgement held back by ack_lag
        self._halt = threading.Event()
        self._c = None

    def _connect_client(self, c, clean):
        if self.version == 5:
            props = [(SESSION_EXPIRY_INTERVAL, 3600)]
            c.send(connect5_packet(self.client_id, clean_start=clean, props=props))
        else:
            c.send(connect_packet(self.client_id, clean=clean))
        p = c.expect(CONNACK)
        if p.body[1] != 0:
            raise AssertionError("%s: CONNACK rc 0x%02x" % (self.client_id, p.body[1]))
        return p.body[0] & 1

    def subscribe(self):
        """First connection: a new persistent session (Session Present 0 [MQTT-3.2.2-3]),
        SUBSCRIBE at self.qos; stays connected. 3.1.1: Clean Session 0; 5.0: Clean Start 0 with
        Session Expiry Interval 3600 [MQTT-3.1.2-23] (Clean Start 0, as Mosquitto 2.0.11 does
        not save a session whose last CONNECT had Clean Start 1)."""
        c = RawClient5(self.node) if self.version == 5 else RawClient(self.node)
        if self._connect_client(c, clean=False):
            raise AssertionError("new session with Session Present 1")
        if self.version == 5:
            c.send(subscribe5_packet(1, [(self.topic, sub_options(qos=self.qos))]))
        else:
            c.send(subscribe_packet(1, [(self.topic, self.qos)]))
        ack = c.wait_for(harness.SUBACK, 1)
        if ack.body[-1] != self.qos:
            raise AssertionError("SUBACK %r, expected granted QoS %d" % (ack.body, self.qos))
        self._c = c

    def go_offline(self):
        """Clean DISCONNECT (the session stays: clean session 0 / expiry 3600)."""
        self._c.disconnect()
        self._c = None

    def reconnect(self, deadline):
        self._c, sp = connect_retry(self.node, lambda c: self._connect_client(c, clean=False),
                                    deadline)
        self._unacked = []  # acks not sent on the dead connection: the broker re-sends
        self.reconnects += 1
        if sp != 1:
            raise AssertionError("subscriber %s: Session Present 0 after restart: its "
                                 "persistent session was lost [MQTT-3.2.2-2]" % self.client_id)
        return sp

    # -- receiving ---------------------------------------------------------------------
    def _on_packet(self, p):
        if p.type == PUBLISH:
            m = Publish5(p) if self.version == 5 else p
            qos, pid = m.qos, (m.pid if self.version == 5 else m.publish_pid)
            if qos != self.qos:
                raise AssertionError("%s: delivered with QoS %d, expected %d"
                                     % (self.client_id, qos, self.qos))
            if qos == 2 and pid in self._awaiting_rel:
                self.redelivered_publish += 1  # same message again: PUBREC again only
            else:
                if qos == 2:
                    self._awaiting_rel.add(pid)
                with self.cond:
                    seq = payload_seq(m.payload)
                    self.got.append((seq, m.dup))
                    self.seen.add(seq)
                    self.cond.notify_all()
            self._unacked.append((PUBACK if qos == 1 else PUBREC, pid))
            self._flush_acks(self.ack_lag)
        elif p.type == PUBREL:
            self._flush_acks(0)  # PUBREC before PUBCOMP of the same id
            self._awaiting_rel.discard(p.pid)
            self._c.send(pid_packet(PUBCOMP, p.pid))
        else:
            raise AssertionError("%s: unexpected %r" % (self.client_id, p))

    def _flush_acks(self, keep):
        while len(self._unacked) > keep:
            ptype, pid = self._unacked.pop(0)
            self._c.send(pid_packet(ptype, pid))

    def drain(self, want, timeout, idle=WAIT):
        """Offline test: read until every seq in `want` was delivered, acking all; gives up
        after `timeout`, or after `idle` seconds without any packet."""
        deadline = time.monotonic() + timeout
        while not want <= self.seen:
            remaining = deadline - time.monotonic()
            p = _read_packet(self._c, min(remaining, idle)) if remaining > 0 else None
            if p is None:
                missing = sorted(want - self.seen)
                raise AssertionError(
                    "%s: %d of %d acknowledged messages never delivered (first %r); "
                    "delivered %d, QoS 2 PUBLISH re-deliveries absorbed %d"
                    % (self.client_id, len(missing), len(want), missing[:20], len(self.got),
                       self.redelivered_publish))
            self._on_packet(p)
        self._flush_acks(0)

    def quiet(self, seconds):
        """Read whatever else arrives within `seconds` (duplicates), acking it."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            p = _read_packet(self._c, remaining)
            if p is None:
                return
            self._on_packet(p)
            self._flush_acks(0)

    def run(self):
        """Online test: consume, reconnecting after each restart, until stop()."""
        try:
            while not self._halt.is_set():
                try:
                    p = _read_packet(self._c, 0.05)
                    if p is None:
                        self._flush_acks(0)
                        continue
                    self._on_packet(p)
                except (OSError, Closed):
                    self._c.close()
                    if self._halt.is_set():
                        return
                    self.reconnect(time.monotonic() + RESTART_WAIT)
        except Exception as e:  # noqa: BLE001
            self.error = e
            with self.cond:
                self.cond.notify_all()

    def wait_seen(self, want, timeout, idle=WAIT):
        """Until every seq in `want` was delivered; False after `timeout`, or after `idle`
        seconds in which nothing was delivered."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                count = len(self.got)
                wait = min(idle, deadline - time.monotonic())
                if self.cond.wait_for(lambda: want <= self.seen or self.error
                                      or len(self.got) > count, max(0.0, wait)):
                    if want <= self.seen or self.error:
                        return True
                    continue
                return False

    def stop(self):
        self._halt.set()
        self.join(WAIT)

    def close(self):
        if self._c is not None:
            self._c.close()

    def sever(self):
        """Breaks the connection without DISCONNECT (as a network failure does); a running
        subscriber reconnects, to self.node."""
        try:
            self._c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# ----------------------------------------------------------------------------------------
# Checking a delivered stream
# ----------------------------------------------------------------------------------------


def check_stream(got, acked, qos, resent, redelivery_allowed):
    """Problems (list of strings) in a subscriber's delivered stream `got` [(seq, dup)]:
    - every seq in `acked` was delivered (no acknowledged message lost);
    - QoS 2: nothing delivered twice (exactly once) [MQTT-4.3.3];
    - QoS 1: a seq delivered again only if the publisher re-sent it (resent) or, when
      redelivery_allowed (the subscriber was online at a kill), the copy has DUP 1 as a
      server re-delivery must [MQTT-3.3.1-1], [MQTT-4.3.2];
    - order: first deliveries in publisher order [MQTT-4.6.0-6] (a re-sent message is
      delivered again after messages that followed it; its first delivery stays in order)."""
    problems = []
    seqs = [s for s, _ in got]
    missing = sorted(set(acked) - set(seqs))
    if missing:
        problems.append("%d acknowledged messages never delivered (first: %r)"
                        % (len(missing), missing[:20]))
    first, dups, seen = [], [], set()
    for s, dup in got:
        if s in seen:
            dups.append((s, dup))
        else:
            seen.add(s)
            first.append(s)
    if qos == 2 and dups:
        problems.append("QoS 2 delivered more than once: %r" % dups[:20])
    if qos == 1:
        bad = [(s, d) for s, d in dups if s not in resent and not (redelivery_allowed and d)]
        if bad:
            problems.append("QoS 1 duplicates of messages the publisher sent once and not "
                            "flagged as re-delivery: %r" % bad[:20])
    disorder = [(a, b) for a, b in zip(first, first[1:]) if b < a]
    if disorder:
        problems.append("out of order (first deliveries): %r" % disorder[:20])
    return problems


def kill_points(rng, n, kills):
    """`kills` distinct ack counts in [5%, 80%] of n at which to kill, ascending."""
    lo, hi = max(1, n // 20), max(2, n * 8 // 10)
    return sorted(rng.sample(range(lo, hi), min(kills, hi - lo)))


def seeded_rng(test):
    seed = os.environ.get("PERSIST_SEED")
    seed = int(seed) if seed else random.randrange(1 << 30)
    sys.stderr.write("[%s] PERSIST_SEED=%d\n" % (test.id(), seed))
    return random.Random(seed)


# ----------------------------------------------------------------------------------------
# The crash test of issue 5 (41_crash_offline.py, 42_crash_online.py)
# ----------------------------------------------------------------------------------------


def crash_run(test, qos, online):
    """A publisher sends PERSIST_N numbered messages at `qos` to two persistent subscribers
    (3.1.1 Clean Session 0 and 5.0 Session Expiry 3600) while the node is crashed
    PERSIST_KILLS times at random moments and restarted on the same port and data directory;
    the publisher resumes after each restart [MQTT-4.4.0-1]. Offline: the subscribers are
    disconnected throughout and reconnect after a last crash that follows the final
    acknowledgement. Online: they consume throughout with acknowledgements held back a little
    (so that messages are in flight at each kill) and reconnect after every restart. Then
    every message the publisher had acknowledged must have been delivered to each subscriber,
    exactly once for QoS 2, in publisher order (check_stream)."""
    n = env_int("PERSIST_N", 2000)
    kills = env_int("PERSIST_KILLS", 3)
    window = env_int("PERSIST_WINDOW", 10)
    rng = seeded_rng(test)
    t_start = time.monotonic()
    node = Node(["--max-queued-messages", str(2 * n + 1000)])
    test.addCleanup(node.cleanup)
    node.start()
    topic = unique("crash%d" % qos)
    subs = [Subscriber(node, topic, qos, version=4, ack_lag=3 if online else 0),
            Subscriber(node, topic, qos, version=5, ack_lag=5 if online else 0)]
    for s in subs:
        test.addCleanup(s.close)
        s.subscribe()
        if online:
            s.start()
            test.addCleanup(s.stop)
        else:
            s.go_offline()
    pub = Publisher(node, topic, n, qos, window=window, pad=b"-" + topic.encode())
    test.addCleanup(pub.stop)
    pub.start()
    kill_log = []
    budget = 30.0 + n * 0.02  # generous: a loaded 2-core machine
    for point in kill_points(rng, n, kills):
        # After a restart, the next kill waits until the publisher is back and has had at
        # least one more message acknowledged, so that every kill hits a working publisher.
        point = max(point, kill_log[-1] + 1 if kill_log else 0)
        if not pub.wait_acked(point, budget, reconnects=len(kill_log)):
            test.fail("publisher stalled at %d acknowledged of %d (waiting for %d): %r\n%s"
                      % (pub.acked_count(), n, point, pub.error, node.log_tail()))
        if pub.error or pub.done.is_set():
            break
        time.sleep(rng.uniform(0, 0.01))  # places the kill at a random moment, not a sync
        at = pub.acked_count()
        node.crash()
        kill_log.append(at)
        node.start()
    pub.join(budget)
    if pub.error:
        raise pub.error
    test.assertTrue(pub.done.is_set(), "publisher did not finish: %d of %d completed\n%s"
                    % (pub.completed, n, node.log_tail()))
    test.assertEqual(pub.completed, n)
    acked = set(pub.acked)
    test.assertEqual(len(acked), n)
    if not online:
        node.crash()  # everything is acknowledged and queued: the queues must survive this
        kill_log.append(len(acked))
        node.start()
        for s in subs:
            s.reconnect(time.monotonic() + RESTART_WAIT)
            try:
                s.drain(acked, budget)
            except AssertionError as e:
                raise AssertionError("%s\nkills at acked=%r; log tail:\n%s"
                                     % (e, kill_log, node.log_tail()))
            s.quiet(1.0)
    else:
        for s in subs:
            if not s.wait_seen(acked, budget):
                missing = sorted(acked - s.seen)
                test.fail("%s: %d acknowledged messages never delivered (first %r), "
                          "delivered %d; kills at acked=%r\n%s"
                          % (s.client_id, len(missing), missing[:20], len(s.got), kill_log,
                             node.log_tail()))
            if s.error:
                raise s.error
        # Anything still coming (duplicates) arrives within this bounded time.
        time.sleep(1.0)  # a negative check after the positive barrier above
        for s in subs:
            s.stop()
            if s.error:
                raise s.error
    resent = {seq for seq, count in enumerate(pub.sends) if count > 1}
    report = ["qos %d %s: n=%d kills at acked=%r, publisher reconnects %d, re-sent %d, "
              "%.1fs" % (qos, "online" if online else "offline", n, kill_log, pub.reconnects,
                         len(resent), time.monotonic() - t_start)]
    problems = []
    for s in subs:
        dups = len(s.got) - len(set(seq for seq, _ in s.got))
        report.append("  %s: delivered %d (%d duplicates, %d QoS 2 PUBLISH re-deliveries "
                      "absorbed), reconnects %d" % (s.client_id, len(s.got), dups,
                                                    s.redelivered_publish, s.reconnects))
        if online and kill_log:
            test.assertGreaterEqual(s.reconnects, 1, "%s never lost its connection" % s.client_id)
        for p in check_stream(s.got, acked, qos, resent, redelivery_allowed=online):
            problems.append("%s: %s" % (s.client_id, p))
    sys.stderr.write("\n".join(report) + "\n")
    if problems:
        test.fail("\n".join(problems) + "\nseed/log tail:\n" + node.log_tail())
