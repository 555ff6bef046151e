# SPDX-License-Identifier: Apache-2.0
"""MQTT 5.0 additions to ../harness.py: 5.0 packets with properties for the raw client, a paho
(protocol=MQTTv5) wrapper, and helpers shared by the 2x/3x test files in this directory.

Everything from harness.py is re-exported (start_broker, BrokerTestCase, RawClient, WAIT,
QUIET, unique, ...). As there: no sleeping to synchronise; every wait has a deadline.
"""

import os
import queue
import shutil
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import harness  # noqa: E402
from harness import *  # noqa: E402,F401,F403
from harness import (CONNACK, CONNECT, DISCONNECT, PUBACK, PUBCOMP, PUBLISH, PUBREC,  # noqa: E402
                     PUBREL, SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE, WAIT, QUIET, BrokerTestCase,
                     Closed, PahoClient, RawClient, mstr, packet, unique, varint)

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties as PahoProperties  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

AUTH = 15
NAMES5 = dict(harness.NAMES)
NAMES5[AUTH] = "AUTH"

# ----------------------------------------------------------------------------------------
# Properties (section 2.2.2): an ordered list of (identifier, value)
# ----------------------------------------------------------------------------------------

PAYLOAD_FORMAT_INDICATOR = 0x01
MESSAGE_EXPIRY_INTERVAL = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_IDENTIFIER = 0x0B
SESSION_EXPIRY_INTERVAL = 0x11
ASSIGNED_CLIENT_IDENTIFIER = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTHENTICATION_METHOD = 0x15
AUTHENTICATION_DATA = 0x16
REQUEST_PROBLEM_INFORMATION = 0x17
WILL_DELAY_INTERVAL = 0x18
REQUEST_RESPONSE_INFORMATION = 0x19
RESPONSE_INFORMATION = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_U16 = {0x13, 0x21, 0x22, 0x23}
_U32 = {0x02, 0x11, 0x18, 0x27}
_VBI = {0x0B}
_STR = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}
_BIN = {0x09, 0x16}
_PAIR = {0x26}

# Reason codes used by the tests (section 2.4)
RC_SUCCESS = 0x00
RC_DISCONNECT_WITH_WILL = 0x04
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_BAD_AUTH_METHOD = 0x8C
RC_SHUTTING_DOWN = 0x8B
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_PAYLOAD_FORMAT_INVALID = 0x99


def encode_property(pid, value):
    out = varint(pid)
    if pid in _BYTE:
        return out + bytes([value])
    if pid in _U16:
        return out + struct.pack("!H", value)
    if pid in _U32:
        return out + struct.pack("!I", value)
    if pid in _VBI:
        return out + varint(value)
    if pid in _STR or pid in _BIN:
        return out + mstr(value)
    if pid in _PAIR:
        return out + mstr(value[0]) + mstr(value[1])
    raise ValueError("unknown property 0x%02x" % pid)


def encode_properties(props=()):
    """props: iterable of (identifier, value), encoded in the given order."""
    body = b"".join(encode_property(pid, v) for pid, v in (props or ()))
    return varint(len(body)) + body


def _read_varint(buf, off):
    mult, value = 1, 0
    for _ in range(4):
        b = buf[off]
        off += 1
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, off
    raise ValueError("varint longer than 4 bytes")


def _read_str(buf, off, binary=False):
    n = struct.unpack("!H", buf[off:off + 2])[0]
    raw = bytes(buf[off + 2:off + 2 + n])
    return (raw if binary else raw.decode("utf-8")), off + 2 + n


class Props(list):
    """Decoded properties: an ordered list of (identifier, value) with lookups."""

    def get(self, pid, default=None):
        for k, v in self:
            if k == pid:
                return v
        return default

    def all(self, pid):
        return [v for k, v in self if k == pid]

    def has(self, pid):
        return any(k == pid for k, _ in self)


def decode_properties(buf, off):
    length, off = _read_varint(buf, off)
    end = off + length
    props = Props()
    while off < end:
        pid, off = _read_varint(buf, off)
        if pid in _BYTE:
            v, off = buf[off], off + 1
        elif pid in _U16:
            v, off = struct.unpack("!H", buf[off:off + 2])[0], off + 2
        elif pid in _U32:
            v, off = struct.unpack("!I", buf[off:off + 4])[0], off + 4
        elif pid in _VBI:
            v, off = _read_varint(buf, off)
        elif pid in _STR:
            v, off = _read_str(buf, off)
        elif pid in _BIN:
            v, off = _read_str(buf, off, binary=True)
        elif pid in _PAIR:
            k, off = _read_str(buf, off)
            val, off = _read_str(buf, off)
            v = (k, val)
        else:
            raise ValueError("unknown property 0x%02x in %r" % (pid, bytes(buf)))
        props.append((pid, v))
    if off != end:
        raise ValueError("property length mismatch")
    return props, end


# ----------------------------------------------------------------------------------------
# 5.0 packets
# ----------------------------------------------------------------------------------------


def connect5_packet(client_id="", clean_start=True, keepalive=60, props=(), will=None,
                    username=None, password=None):
    """will = dict(topic, payload, qos=0, retain=False, props=())."""
    flags = 0x02 if clean_start else 0
    payload = mstr(client_id)
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        payload += encode_properties(will.get("props", ())) + mstr(will["topic"]) + \
            mstr(will.get("payload", b""))
    if username is not None:
        flags |= 0x80
        payload += mstr(username)
    if password is not None:
        flags |= 0x40
        payload += mstr(password)
    body = mstr("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive) + \
        encode_properties(props) + payload
    return packet(CONNECT, 0, body)


def publish5_packet(topic, payload=b"", qos=0, retain=False, dup=False, pid=1, props=()):
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = mstr(topic)
    if qos > 0:
        body += struct.pack("!H", pid)
    return packet(PUBLISH, flags, body + encode_properties(props) + payload)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) | \
        (retain_handling << 4)


def subscribe5_packet(pid, filters, props=()):
    """filters: list of (topic_filter, options byte)."""
    body = struct.pack("!H", pid) + encode_properties(props)
    for f, o in filters:
        body += mstr(f) + bytes([o])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe5_packet(pid, filters, props=()):
    body = struct.pack("!H", pid) + encode_properties(props)
    for f in filters:
        body += mstr(f)
    return packet(UNSUBSCRIBE, 0x02, body)


def ack5_packet(ptype, pid, rc=0, props=()):
    flags = 0x02 if ptype == PUBREL else 0
    body = struct.pack("!H", pid)
    if rc or props:
        body += bytes([rc]) + encode_properties(props)
    return packet(ptype, flags, body)


def disconnect5_packet(rc=0, props=()):
    return packet(DISCONNECT, 0, bytes([rc]) + encode_properties(props))


def auth5_packet(rc=0x18, props=()):
    return packet(AUTH, 0, bytes([rc]) + encode_properties(props))


class Connack5:
    def __init__(self, p):
        self.session_present = p.body[0] & 1
        self.rc = p.body[1]
        self.props = decode_properties(p.body, 2)[0] if len(p.body) > 2 else Props()

    def __repr__(self):
        return "<CONNACK sp=%d rc=0x%02x %r>" % (self.session_present, self.rc, list(self.props))


class Publish5:
    """A 5.0 PUBLISH as received."""

    def __init__(self, p):
        self.raw = p
        self.flags = p.flags
        self.qos = (p.flags >> 1) & 3
        self.retain = bool(p.flags & 1)
        self.dup = bool(p.flags & 8)
        self.topic, off = _read_str(p.body, 0)
        self.pid = None
        if self.qos:
            self.pid = struct.unpack("!H", p.body[off:off + 2])[0]
            off += 2
        self.props, off = decode_properties(p.body, off)
        self.payload = bytes(p.body[off:])

    @property
    def sub_ids(self):
        return self.props.all(SUBSCRIPTION_IDENTIFIER)

    @property
    def user_props(self):
        return self.props.all(USER_PROPERTY)

    def __repr__(self):
        return "<PUBLISH5 %r q%d r%d d%d pid=%s props=%r %r>" % (
            self.topic, self.qos, self.retain, self.dup, self.pid, list(self.props),
            self.payload[:40])


def reason_of(p):
    """Reason code of a 5.0 DISCONNECT/PUBACK-family/AUTH packet (0 when omitted)."""
    if p.type in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        return p.body[2] if len(p.body) > 2 else 0
    return p.body[0] if len(p.body) >= 1 else 0


class RawClient5(RawClient):
    """RawClient speaking 5.0: properties on every packet."""

    def connect5(self, client_id=None, expect_rc=0, **kw):
        """Send a 5.0 CONNECT, read CONNACK; returns Connack5."""
        if client_id is None:
            client_id = unique("raw5")
        self.client_id = client_id
        self.send(connect5_packet(client_id, **kw))
        ack = Connack5(self.expect(CONNACK))
        if expect_rc is not None and ack.rc != expect_rc:
            raise AssertionError("CONNACK rc=0x%02x, expected 0x%02x (%r)"
                                 % (ack.rc, expect_rc, ack))
        return ack

    def subscribe5(self, filters, pid=1, sub_id=None, props=()):
        """filters: a filter string (QoS 0) or a list of (filter, options byte). Returns the
        SUBACK reason codes."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        props = list(props)
        if sub_id is not None:
            props.insert(0, (SUBSCRIPTION_IDENTIFIER, sub_id))
        self.send(subscribe5_packet(pid, filters, props))
        p = self.wait_for(SUBACK, pid)
        _, off = decode_properties(p.body, 2)
        return list(p.body[off:])

    def unsubscribe5(self, filters, pid=1):
        self.send(unsubscribe5_packet(pid, filters))
        p = self.wait_for(UNSUBACK, pid)
        _, off = decode_properties(p.body, 2)
        return list(p.body[off:])

    def publish5(self, topic, payload=b"", qos=0, retain=False, pid=1, props=()):
        """Publish and complete the handshake; returns the PUBACK/PUBREC reason code."""
        self.send(publish5_packet(topic, payload, qos, retain, False, pid, props))
        if qos == 1:
            return reason_of(self.wait_for(PUBACK, pid))
        if qos == 2:
            rc = reason_of(self.wait_for(PUBREC, pid))
            if rc < 0x80:
                self.send(ack5_packet(PUBREL, pid))
                self.wait_for(PUBCOMP, pid)
            return rc
        return None

    def recv_pub(self, timeout=WAIT, ack=True):
        """The next PUBLISH as Publish5, acknowledged by default."""
        p = self.recv(timeout)
        if p.type != PUBLISH:
            raise AssertionError("expected PUBLISH, got %r" % p)
        if ack:
            self.ack(p)
        return Publish5(p)

    def expect_no_publish(self, timeout=QUIET):
        try:
            p = self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected packet %r" % (Publish5(p) if p.type == PUBLISH else p))

    def expect_disconnect(self, reason, timeout=WAIT):
        """Read until DISCONNECT (skipping PUBLISH etc.), check its reason code and that the
        broker then closes the connection. Returns the DISCONNECT properties."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                p = self.recv(max(0.0, deadline - time.monotonic()))
            except Closed:
                raise AssertionError("connection closed without DISCONNECT 0x%02x (read %r)"
                                     % (reason, seen))
            except TimeoutError:
                raise AssertionError("no DISCONNECT 0x%02x within %.1fs (read %r)"
                                     % (reason, timeout, seen))
            if p.type == DISCONNECT:
                got = reason_of(p)
                if got != reason:
                    raise AssertionError("DISCONNECT reason 0x%02x, expected 0x%02x"
                                         % (got, reason))
                props = decode_properties(p.body, 1)[0] if len(p.body) > 1 else Props()
                self.wait_closed(max(1.0, deadline - time.monotonic()))
                return props
            seen.append(p)

    def disconnect5(self, rc=0, props=()):
        try:
            self.send(disconnect5_packet(rc, props))
        except OSError:
            pass
        self.close()


class Broker5TestCase(BrokerTestCase):
    """BrokerTestCase plus 5.0 clients."""

    def raw5(self, client_id=None, broker=None, **connect_kw):
        """A connected RawClient5 (CONNACK success checked), closed at tearDown."""
        c = RawClient5(broker or self.broker)
        self._cleanup_clients.append(c)
        c.connack = c.connect5(client_id, **connect_kw)
        return c

    def raw5_unconnected(self, broker=None):
        c = RawClient5(broker or self.broker)
        self._cleanup_clients.append(c)
        return c

    def paho5(self, connect=True, broker=None, **kw):
        c = Paho5Client(broker or self.broker, **kw)
        self._cleanup_clients.append(c)
        if connect:
            c.connect()
        return c

    def tearDown(self):
        for c in self._cleanup_clients:
            try:
                if isinstance(c, (PahoClient, Paho5Client)):
                    c.drop()
                else:
                    c.close()
            except Exception:
                pass


# ----------------------------------------------------------------------------------------
# paho-mqtt 1.6 with protocol=MQTTv5
# ----------------------------------------------------------------------------------------


def paho_props(ptype, **kw):
    """paho Properties for a packet type: paho_props(PacketTypes.PUBLISH, ContentType='x')."""
    p = PahoProperties(ptype)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def _rc(value):
    return getattr(value, "value", value)


class Paho5Client:
    """paho 1.6 MQTTv5 client, own network thread, no automatic reconnect.

    connect() returns (session_present, reason code, CONNACK properties); received messages
    go to a queue."""

    def __init__(self, broker, client_id=None, clean_start=True, keepalive=60, will=None,
                 connect_props=None, max_inflight=20):
        self.broker = broker
        self.client_id = client_id if client_id is not None else unique("paho5")
        self.c = paho.Client(client_id=self.client_id, protocol=paho.MQTTv5)
        self.c.max_inflight_messages_set(max_inflight)
        self.c.max_queued_messages_set(0)
        self.clean_start = clean_start
        self.keepalive = keepalive
        self.connect_props = connect_props
        if will is not None:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                            will.get("retain", False), properties=will.get("properties"))
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = {}
        self.unsubacks = {}
        self.cond = threading.Condition()
        self.disconnected = threading.Event()
        self.disconnect_reason = None
        self._stop = threading.Event()
        self._thread = None
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect
        # Only the loop thread writes to the socket (see harness.PahoClient).
        self.c.on_socket_register_write = lambda client, userdata, sock: None

    def _on_connect(self, c, u, flags, rc, props):
        self.connack.put((flags.get("session present", 0), _rc(rc), props))

    def _on_message(self, c, u, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, u, mid, reason_codes, props):
        with self.cond:
            self.subacks[mid] = [_rc(r) for r in reason_codes]
            self.cond.notify_all()

    def _on_unsubscribe(self, c, u, mid, props, reason_codes):
        with self.cond:
            self.unsubacks[mid] = reason_codes
            self.cond.notify_all()

    def _on_disconnect(self, c, u, rc, props=None):
        self.disconnect_reason = _rc(rc)
        self.disconnected.set()

    def _loop(self):
        while not self._stop.is_set():
            rc = self.c.loop(timeout=0.05)
            if rc != paho.MQTT_ERR_SUCCESS:
                self.disconnected.set()
                return

    def connect(self, expect_rc=0):
        self.c.connect(self.broker.host, self.broker.port, self.keepalive,
                       clean_start=self.clean_start, properties=self.connect_props)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        try:
            sp, rc, props = self.connack.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError("no CONNACK for %s" % self.client_id)
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("CONNACK rc=%r expected %r" % (rc, expect_rc))
        return sp, rc, props

    def subscribe(self, topic, qos=0, options=None, properties=None):
        """topic: a string (with qos or options) or a list of (topic, SubscribeOptions).
        Returns the SUBACK reason codes."""
        if isinstance(topic, str):
            opts = options if options is not None else SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, properties=properties)
        assert rc == paho.MQTT_ERR_SUCCESS, rc
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.subacks, WAIT):
                raise AssertionError("no SUBACK")
            return self.subacks.pop(mid)

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == paho.MQTT_ERR_SUCCESS, rc
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.unsubacks, WAIT):
                raise AssertionError("no UNSUBACK")

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True):
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
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

    def disconnect(self, reasoncode=None, properties=None):
        """Clean DISCONNECT (optionally with a reason code / properties)."""
        rc = None
        if reasoncode is not None:
            from paho.mqtt.reasoncodes import ReasonCodes
            rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reasoncode)
        self.c.disconnect(reasoncode=rc, properties=properties)
        if self._thread:
            self._thread.join(WAIT)
        self._stop.set()

    def drop(self):
        """Close the TCP connection without DISCONNECT."""
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


def wait_until(pred, timeout=WAIT, what="condition"):
    """Poll pred() until true or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.02)  # polling a condition with a deadline, not a synchronising sleep


def wait_elapsed(t0, seconds):
    """Block until `seconds` have passed since monotonic time t0. Used only where the passing
    of time is itself what a test checks (expiry intervals), never to wait for the broker."""
    remaining = t0 + seconds - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def main():
    import unittest
    unittest.main(verbosity=2)


class Collector:
    """Reads PUBLISH packets of several connected raw clients (RawClient5 or 3.1.1 RawClient)
    on one thread each, acknowledging them unless ack=False. got[name] is the ordered list of
    (topic, payload) each received. Stop with stop() before using the clients again."""

    def __init__(self, clients, ack=True):
        self.clients = dict(clients)  # name -> client
        self.got = {name: [] for name in self.clients}
        self.packets = {name: [] for name in self.clients}
        self.cond = threading.Condition()
        self.ack = ack
        self._stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(n, c), daemon=True)
                        for n, c in self.clients.items()]
        for t in self.threads:
            t.start()

    def _run(self, name, client):
        v5 = isinstance(client, RawClient5)
        while not self._stop.is_set():
            try:
                p = client.recv(0.1)
            except TimeoutError:
                continue
            except Closed:
                return
            except Exception as e:  # noqa: BLE001
                self.errors.append(e)
                return
            if p.type != PUBLISH:
                with self.cond:
                    self.errors.append(AssertionError("%s: unexpected %r" % (name, p)))
                    self.cond.notify_all()
                continue
            m = Publish5(p) if v5 else p
            if self.ack:
                try:
                    client.ack(p)
                except Exception as e:  # noqa: BLE001
                    self.errors.append(e)
            with self.cond:
                self.got[name].append((m.topic, m.payload))
                self.packets[name].append(m)
                self.cond.notify_all()

    def total(self):
        return sum(len(v) for v in self.got.values())

    def wait_total(self, n, timeout=WAIT):
        with self.cond:
            ok = self.cond.wait_for(lambda: self.total() >= n or self.errors, timeout)
        if self.errors:
            raise self.errors[0]
        if not ok:
            raise AssertionError("received %d of %d: %r" % (
                self.total(), n, {k: len(v) for k, v in self.got.items()}))

    def quiet(self, n, timeout=QUIET):
        """After wait_total(n): nothing more arrives within timeout."""
        with self.cond:
            self.cond.wait_for(lambda: self.total() > n, timeout)
            if self.total() > n:
                raise AssertionError("more than %d messages: %r" % (n, self.counts()))

    def counts(self):
        return {k: len(v) for k, v in self.got.items()}

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(WAIT)
