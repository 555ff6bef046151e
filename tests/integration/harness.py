# SPDX-License-Identifier: Apache-2.0
"""Black-box test harness: start a broker, drive it with raw packets or paho-mqtt.

The broker is the binary named by the environment variable MQTTD_BIN (default:
build/release/node/mqttd in this repository). When its basename contains "mosquitto" the
harness starts Mosquitto instead, with a generated configuration, so that the tests can be
validated against a reference broker. No test may sleep to synchronise: every wait is on an
event or a condition with a deadline. Negative checks ("no message arrives") wait a short
bounded time after a positive barrier.
"""

import os
import queue
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import paho.mqtt.client as paho

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BIN = os.path.join(REPO, "build", "release", "node", "mqttd")

WAIT = 10.0  # generous deadline for anything that must happen (loaded 2-core machine)
QUIET = 0.5  # how long to wait for something that must NOT happen, after a barrier


def broker_bin():
    return os.environ.get("MQTTD_BIN") or DEFAULT_BIN


def is_mosquitto():
    return "mosquitto" in os.path.basename(broker_bin())


def skip_under_mosquitto(reason):
    return unittest.skipIf(is_mosquitto(), "mqttd-specific: " + reason)


def only_mqttd(reason="applies to mqttd only"):
    return unittest.skipIf(is_mosquitto(), reason)


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


# ----------------------------------------------------------------------------------------
# Broker process
# ----------------------------------------------------------------------------------------


class Broker:
    """A running broker: host, port, proc, logs, stop(), kill()."""

    def __init__(self, proc, host, port, tmpdir, log_lines):
        self.proc = proc
        self.host = host
        self.port = port
        self.tmpdir = tmpdir
        self._log_lines = log_lines
        self.ready_line = None

    @property
    def logs(self):
        return "".join(self._log_lines)

    def wait_for_log(self, text, timeout=WAIT):
        """True once `text` is in the log (read by another thread, so it may lag the broker)."""
        deadline = time.monotonic() + timeout
        while text not in self.logs:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def log_tail(self, n=40):
        return "".join(self._log_lines[-n:])

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=WAIT):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._cleanup()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._cleanup()

    def _cleanup(self):
        if self.tmpdir and os.path.isdir(self.tmpdir):
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def _pump(stream, sink, lines_q=None):
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        sink.append(line)
        if lines_q is not None:
            lines_q.put(line)
    stream.close()
    if lines_q is not None:
        lines_q.put(None)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _option_map(extra_args):
    """--max-inflight N etc. as a dict (used to translate to a Mosquitto config)."""
    opts, i = {}, 0
    while i < len(extra_args):
        a = extra_args[i]
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
            i += 1
        else:
            opts[a] = extra_args[i + 1] if i + 1 < len(extra_args) else ""
            i += 2
    return opts


def _start_mosquitto(extra_args):
    mapping = {
        "--max-inflight": "max_inflight_messages",
        "--max-queued-messages": "max_queued_messages",
        "--max-packet-size": "max_packet_size",
    }
    opts = _option_map(extra_args)
    last_err = ""
    for _attempt in range(5):
        tmpdir = tempfile.mkdtemp(prefix="mqtt-it-")
        os.chmod(tmpdir, 0o755)
        port = free_port()
        conf = [
            "listener %d 127.0.0.1" % port,
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        for k, v in opts.items():
            if k not in mapping:
                raise ValueError("no mosquitto mapping for option " + k)
            conf.append("%s %s" % (mapping[k], v))
        path = os.path.join(tmpdir, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        os.chmod(path, 0o644)
        log_lines, lines_q = [], queue.Queue()
        proc = subprocess.Popen([broker_bin(), "-c", path], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=_pump, args=(proc.stderr, log_lines, lines_q),
                         daemon=True).start()
        deadline = time.monotonic() + WAIT
        running = False
        while time.monotonic() < deadline:
            try:
                line = lines_q.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            if "running" in line and "mosquitto version" in line:
                running = True
                break
        if running and _port_accepts(port, deadline):
            return Broker(proc, "127.0.0.1", port, tmpdir, log_lines)
        last_err = "".join(log_lines)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
    raise RuntimeError("mosquitto did not start:\n" + last_err)


def _port_accepts(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)  # polling a condition with a deadline, not a synchronising sleep
    return False


def _start_mqttd(extra_args):
    tmpdir = tempfile.mkdtemp(prefix="mqttd-it-")
    data = os.path.join(tmpdir, "data")
    os.mkdir(data)
    cmd = [broker_bin(), "--listen", "127.0.0.1:0", "--data-dir", data,
           "--node-id", unique("node"), "--log-level", "info",
           "--http-listen", "127.0.0.1:0"] + list(extra_args)
    log_lines, out_lines, out_q = [], [], queue.Queue()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    threading.Thread(target=_pump, args=(proc.stderr, log_lines), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stdout, out_lines, out_q), daemon=True).start()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            line = out_q.get(timeout=0.1)
        except queue.Empty:
            continue
        if line is None:
            break
        if "ready" in line:
            for word in line.split():
                if word.startswith("mqtt="):
                    host, _, port = word[len("mqtt="):].rpartition(":")
                    b = Broker(proc, host.strip("[]"), int(port), tmpdir, log_lines)
                    b.ready_line = line
                    return b
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    shutil.rmtree(tmpdir, ignore_errors=True)
    raise RuntimeError("mqttd did not print a ready line with mqtt=HOST:PORT within %ss: "
                       "%r\nstdout: %s\nstderr: %s" % (WAIT, cmd, "".join(out_lines),
                                                       "".join(log_lines)))


def start_broker(extra_args=()):
    extra_args = list(extra_args)
    if is_mosquitto():
        return _start_mosquitto(extra_args)
    return _start_mqttd(extra_args)


# ----------------------------------------------------------------------------------------
# Raw MQTT packets
# ----------------------------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = range(8, 15)
NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT"}


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def mstr(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(ptype, flags, body=b""):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect_packet(client_id="", clean=True, keepalive=60, will=None, username=None,
                   password=None, proto="MQTT", level=4, reserved=False, flags_override=None):
    """will = dict(topic, payload, qos=0, retain=False)."""
    flags = 0x02 if clean else 0
    if reserved:
        flags |= 0x01
    payload = mstr(client_id)
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        payload += mstr(will["topic"]) + mstr(will.get("payload", b""))
    if username is not None:
        flags |= 0x80
        payload += mstr(username)
    if password is not None:
        flags |= 0x40
        payload += mstr(password)
    if flags_override is not None:
        flags = flags_override
    body = mstr(proto) + bytes([level, flags]) + struct.pack("!H", keepalive) + payload
    return packet(CONNECT, 0, body)


def publish_packet(topic, payload=b"", qos=0, retain=False, dup=False, pid=None):
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = mstr(topic)
    if qos > 0:
        body += struct.pack("!H", pid if pid is not None else 1)
    return packet(PUBLISH, flags, body + payload)


def pid_packet(ptype, pid, flags=None):
    if flags is None:
        flags = 0x02 if ptype == PUBREL else 0
    return packet(ptype, flags, struct.pack("!H", pid))


def subscribe_packet(pid, filters):
    """filters: list of (topic_filter, qos)."""
    body = struct.pack("!H", pid)
    for f, q in filters:
        body += mstr(f) + bytes([q])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe_packet(pid, filters):
    body = struct.pack("!H", pid)
    for f in filters:
        body += mstr(f)
    return packet(UNSUBSCRIBE, 0x02, body)


PINGREQ_BYTES = packet(PINGREQ, 0)
DISCONNECT_BYTES = packet(DISCONNECT, 0)


class Packet:
    def __init__(self, ptype, flags, body):
        self.type, self.flags, self.body = ptype, flags, body

    @property
    def pid(self):
        return struct.unpack("!H", self.body[:2])[0]

    # PUBLISH fields
    @property
    def qos(self):
        return (self.flags >> 1) & 3

    @property
    def retain(self):
        return bool(self.flags & 1)

    @property
    def dup(self):
        return bool(self.flags & 8)

    @property
    def topic(self):
        n = struct.unpack("!H", self.body[:2])[0]
        return self.body[2:2 + n].decode("utf-8")

    @property
    def publish_pid(self):
        if self.qos == 0:
            return None
        n = struct.unpack("!H", self.body[:2])[0]
        return struct.unpack("!H", self.body[2 + n:4 + n])[0]

    @property
    def payload(self):
        n = struct.unpack("!H", self.body[:2])[0]
        return self.body[2 + n + (2 if self.qos else 0):]

    def __repr__(self):
        name = NAMES.get(self.type, str(self.type))
        if self.type == PUBLISH:
            return "<PUBLISH %s q%d r%d d%d pid=%s %r>" % (
                self.topic, self.qos, self.retain, self.dup, self.publish_pid,
                self.payload[:40])
        return "<%s flags=%x %s>" % (name, self.flags, self.body.hex())


class Closed(Exception):
    pass


class RawClient:
    """A hand-driven MQTT connection: send exact bytes, read packets one at a time."""

    def __init__(self, broker_or_host, port=None, timeout=WAIT):
        if port is None:
            host, port = broker_or_host.host, broker_or_host.port
        else:
            host = broker_or_host
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False
        self.pending = []  # packets read while waiting for a specific one (e.g. PUBREL)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet within deadline")
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            raise TimeoutError("no packet within deadline")
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            self.closed = True
            raise Closed("connection closed by broker")
        self.buf += data

    def recv(self, timeout=WAIT):
        """The next packet; raises TimeoutError or Closed."""
        if self.pending:
            return self.pending.pop(0)
        return self._recv_wire(timeout)

    def _recv_wire(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                mult, length, i = 1, 0, 1
                complete = False
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        complete = True
                        break
                if complete and len(self.buf) >= i + length:
                    first = self.buf[0]
                    body = self.buf[i:i + length]
                    self.buf = self.buf[i + length:]
                    return Packet(first >> 4, first & 0x0F, body)
            self._fill(deadline)

    def expect(self, ptype, timeout=WAIT):
        p = self.recv(timeout)
        if p.type != ptype:
            raise AssertionError("expected %s, got %r" % (NAMES[ptype], p))
        return p

    def wait_for(self, ptype, pid, timeout=WAIT):
        """The next packet of ptype carrying pid; other packets read meanwhile are kept
        for recv() in their order."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._recv_wire(max(0.0, deadline - time.monotonic()))
            if p.type == ptype and len(p.body) >= 2 and p.pid == pid:
                return p
            if p.type in (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, CONNACK):
                raise AssertionError("expected %s pid %d, got %r" % (NAMES[ptype], pid, p))
            self.pending.append(p)

    def expect_none(self, timeout=QUIET):
        """Assert that no packet arrives within timeout (connection may stay open)."""
        try:
            p = self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected packet %r" % p)

    def wait_closed(self, timeout=WAIT):
        """Read until the broker closes the connection; returns the packets read before.

        Raises AssertionError if the connection is still open after timeout."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                got.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError("connection still open after %.1fs (read %r)"
                                     % (timeout, got))

    def connect(self, client_id=None, expect_rc=0, **kw):
        """Send CONNECT and read CONNACK; returns (session_present, rc)."""
        if client_id is None:
            client_id = unique("raw")
        self.send(connect_packet(client_id, **kw))
        p = self.expect(CONNACK)
        sp, rc = p.body[0] & 1, p.body[1]
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("CONNACK rc=%d, expected %d" % (rc, expect_rc))
        return sp, rc

    def subscribe(self, filters, pid=1):
        """filters: list of (filter, qos) or a single filter string (QoS 0). Returns codes."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        self.send(subscribe_packet(pid, filters))
        return list(self.wait_for(SUBACK, pid).body[2:])

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=1, dup=False):
        """Publish and complete the handshake for the QoS."""
        self.send(publish_packet(topic, payload, qos, retain, dup, pid))
        if qos == 1:
            self.wait_for(PUBACK, pid)
        elif qos == 2:
            self.wait_for(PUBREC, pid)
            self.send(pid_packet(PUBREL, pid))
            self.wait_for(PUBCOMP, pid)

    def recv_publish(self, timeout=WAIT, ack=True):
        """The next PUBLISH; acknowledges QoS 1 (PUBACK) and QoS 2 (PUBREC, PUBREL, PUBCOMP)."""
        p = self.expect(PUBLISH, timeout)
        if ack:
            self.ack(p)
        return p

    def ack(self, p):
        if p.qos == 1:
            self.send(pid_packet(PUBACK, p.publish_pid))
        elif p.qos == 2:
            self.send(pid_packet(PUBREC, p.publish_pid))
            rel = self.wait_for(PUBREL, p.publish_pid)
            assert rel.flags == 0x02, rel
            self.send(pid_packet(PUBCOMP, p.publish_pid))

    def ping(self, timeout=WAIT):
        self.send(PINGREQ_BYTES)
        self.expect(PINGRESP, timeout)

    def disconnect(self):
        """DISCONNECT, then wait for the broker to close the connection (so a following
        reconnect with the same client id is ordered after the disconnect)."""
        try:
            self.send(DISCONNECT_BYTES)
            self.wait_closed()
        except (OSError, AssertionError):
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_connect(broker, client_id=None, **kw):
    c = RawClient(broker)
    c.connect(client_id, **kw)
    return c


# ----------------------------------------------------------------------------------------
# paho-mqtt wrapper
# ----------------------------------------------------------------------------------------


class PahoClient:
    """paho 1.6 client with its own network thread that never reconnects by itself.

    Received messages go to a queue; connect/subscribe/publish wait for their ack."""

    def __init__(self, broker, client_id=None, clean_session=True, protocol=paho.MQTTv311,
                 keepalive=60, will=None, username=None, password=None, max_inflight=20):
        self.broker = broker
        self.client_id = client_id if client_id is not None else unique("paho")
        self.c = paho.Client(client_id=self.client_id, clean_session=clean_session,
                             protocol=protocol)
        self.c.max_inflight_messages_set(max_inflight)
        self.c.max_queued_messages_set(0)
        self.keepalive = keepalive
        if will is not None:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                            will.get("retain", False))
        if username is not None:
            self.c.username_pw_set(username, password)
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = {}
        self.unsubacks = {}
        self.cond = threading.Condition()
        self.disconnected = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect
        # With no paho-managed thread, publish() writes to the socket from the caller's thread
        # while our loop thread writes too; paho 1.6 pops packets under a lock but sends
        # outside it, so two writers can swap packets on the wire. Registering a write
        # callback makes publish() only queue: the loop thread alone writes.
        self.c.on_socket_register_write = lambda client, userdata, sock: None

    def _on_connect(self, c, u, flags, rc):
        self.connack.put((flags.get("session present", 0), rc))

    def _on_message(self, c, u, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, u, mid, granted):
        with self.cond:
            self.subacks[mid] = granted
            self.cond.notify_all()

    def _on_unsubscribe(self, c, u, mid):
        with self.cond:
            self.unsubacks[mid] = True
            self.cond.notify_all()

    def _on_disconnect(self, c, u, rc):
        self.disconnected.set()

    def _loop(self):
        while not self._stop.is_set():
            rc = self.c.loop(timeout=0.05)
            if rc != paho.MQTT_ERR_SUCCESS:
                self.disconnected.set()
                return

    def connect(self, expect_rc=0):
        """Returns (session_present, rc)."""
        self.c.connect(self.broker.host, self.broker.port, self.keepalive)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        try:
            sp, rc = self.connack.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError("no CONNACK for %s" % self.client_id)
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("CONNACK rc=%d expected %d" % (rc, expect_rc))
        return sp, rc

    def subscribe(self, topic, qos=0):
        """topic: a string or a list of (topic, qos). Returns the granted QoS list."""
        rc, mid = self.c.subscribe(topic, qos) if isinstance(topic, str) else \
            self.c.subscribe(topic)
        assert rc == paho.MQTT_ERR_SUCCESS, rc
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.subacks, WAIT):
                raise AssertionError("no SUBACK")
            return list(self.subacks.pop(mid))

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == paho.MQTT_ERR_SUCCESS, rc
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.unsubacks, WAIT):
                raise AssertionError("no UNSUBACK")

    def publish(self, topic, payload=b"", qos=0, retain=False, wait=True):
        info = self.c.publish(topic, payload, qos, retain)
        if wait:
            info.wait_for_publish(WAIT)
            if not info.is_published():
                raise AssertionError("publish to %s (qos %d) not completed" % (topic, qos))
        return info

    def recv(self, timeout=WAIT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: no message within %.1fs" % (self.client_id, timeout))

    def expect_none(self, timeout=QUIET):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError("unexpected message %s %r" % (m.topic, m.payload))

    def disconnect(self):
        """Clean DISCONNECT."""
        self.c.disconnect()
        self._join()

    def drop(self):
        """Close the TCP connection without DISCONNECT (abnormal disconnect)."""
        self._stop.set()
        if self._thread:
            self._thread.join(WAIT)
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _join(self):
        if self._thread:
            self._thread.join(WAIT)
            self._stop.set()


# ----------------------------------------------------------------------------------------
# Test case base
# ----------------------------------------------------------------------------------------


class BrokerTestCase(unittest.TestCase):
    """One broker for the whole class (BROKER_ARGS); tests use unique topics and ids."""

    BROKER_ARGS = ()
    broker = None

    @classmethod
    def setUpClass(cls):
        cls.broker = start_broker(cls.BROKER_ARGS)

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            if os.environ.get("MQTT_TEST_LOGS"):
                sys.stderr.write("---- broker log ----\n" + cls.broker.logs)
            cls.broker.stop()

    def setUp(self):
        self._cleanup_clients = []
        self.assert_broker_alive()

    def tearDown(self):
        for c in self._cleanup_clients:
            try:
                if isinstance(c, PahoClient):
                    c.drop()
                else:
                    c.close()
            except Exception:
                pass

    def assert_broker_alive(self, broker=None):
        b = broker or self.broker
        if not b.alive():
            self.fail("broker died (exit %s); log tail:\n%s" % (b.proc.returncode,
                                                                 b.log_tail()))

    def raw(self, client_id=None, broker=None, **connect_kw):
        """A connected RawClient (CONNACK 0 checked), closed at tearDown."""
        c = RawClient(broker or self.broker)
        self._cleanup_clients.append(c)
        c.connect(client_id, **connect_kw)
        return c

    def raw_unconnected(self, broker=None):
        c = RawClient(broker or self.broker)
        self._cleanup_clients.append(c)
        return c

    def paho(self, connect=True, broker=None, **kw):
        c = PahoClient(broker or self.broker, **kw)
        self._cleanup_clients.append(c)
        if connect:
            c.connect()
        return c

    def topic(self, suffix=""):
        return unique(self._testMethodName[:20]) + suffix


def main():
    unittest.main(verbosity=2)
