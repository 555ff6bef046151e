#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT over WebSocket (ws) and WebSocket over TLS (wss), MQTT 5.0 chapter 6 / 3.1.1 chapter 6:
the HTTP Upgrade (path, subprotocol mqtt or mqttv3.1 echoed, refused without one), two packets
in one frame [MQTT-6.0.0-2], a packet split over frames and over a fragmented message
[MQTT-6.0.0-3], text frames refused [MQTT-6.0.0-1], ping/pong, the handshake timeout; real
clients: paho (transport websockets) and MQTT.js over ws:// and wss://."""

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import types
import unittest

import paho.mqtt.client as paho

import harness
from certs import Certs
from harness import (CONNACK, PUBLISH, SUBACK, WAIT, PahoClient, connect_packet, packet,
                     publish_packet, subscribe_packet, unique)

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v5", "js")
NODE = shutil.which("node")
HAVE_MQTTJS = bool(NODE) and os.path.isdir(os.path.join(JS, "node_modules", "mqtt"))
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def listener(broker, protocol):
    for word in broker.ready_line.split():
        if word.startswith(protocol + "="):
            return int(word.rpartition(":")[2])
    raise AssertionError("no %s= in %r" % (protocol, broker.ready_line))


class WsClient:
    """A hand-driven WebSocket client: the Upgrade, masked frames out, frames in."""

    def __init__(self, port, path="/mqtt", protocols=("mqtt",), tls=None):
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: localhost", "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + self.key,
                 "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        head = head.decode().split("\r\n")
        self.status = int(head[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        self.mqtt = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise harness.Closed("closed")
        self.buf += data

    def send_frame(self, payload, opcode=2, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def recv_frame(self):
        while len(self.buf) < 2:
            self._fill()
        opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        self.assertion(self.buf[1] & 0x80 == 0, "server frames are not masked")
        i = 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            n, i = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            n, i = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < i + n:
            self._fill()
        payload, self.buf = self.buf[i:i + n], self.buf[i + n:]
        return opcode, payload

    @staticmethod
    def assertion(cond, what):
        if not cond:
            raise AssertionError(what)

    def recv_packet(self):
        """The next MQTT packet from the binary frames: (type, body)."""
        while True:
            if len(self.mqtt) >= 2:
                mult, length, i = 1, 0, 1
                while i < len(self.mqtt):
                    b = self.mqtt[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        break
                if len(self.mqtt) >= i + length and not self.mqtt[i - 1] & 0x80:
                    first, body = self.mqtt[0], self.mqtt[i:i + length]
                    self.mqtt = self.mqtt[i + length:]
                    return first >> 4, body
            opcode, payload = self.recv_frame()
            self.assertion(opcode == 2, "binary frames only, got opcode %d" % opcode)
            self.mqtt += payload

    def close(self):
        self.sock.close()


class WsPaho(PahoClient):
    """The harness's paho client with transport websockets (path /mqtt), over TLS with `ca`."""

    def __init__(self, target, ca=None):
        super().__init__(target)
        plain = self.c
        self.c = paho.Client(client_id=self.client_id, transport="websockets")
        self.c.ws_set_options(path="/mqtt")
        if ca:
            self.c.tls_set(ca_certs=ca)  # the certificate names 127.0.0.1 too
        for name in ("on_connect", "on_message", "on_subscribe", "on_unsubscribe",
                     "on_disconnect", "on_socket_register_write"):
            setattr(self.c, name, getattr(plain, name))


@unittest.skipIf(harness.is_mosquitto(), "mqttd's WebSocket flags")
class WebSocket(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mqttd-ws-")
        cls.certs = Certs(cls.dir)
        cls.broker = harness.start_broker([
            "--workers", "4", "--ws-listen", "127.0.0.1:0", "--wss-listen", "127.0.0.1:0",
            "--tls-cert", cls.certs.path("server.crt"), "--tls-key",
            cls.certs.path("server.key"), "--tls-handshake-timeout", "1"])
        cls.ws = listener(cls.broker, "ws")
        cls.wss = listener(cls.broker, "wss")
        cls.tls = ssl.create_default_context(cafile=cls.certs.path("ca.crt"))

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def client(self, **kw):
        c = WsClient(self.ws, **kw)
        self.addCleanup(c.close)
        return c

    def test_upgrade_answers_mqtt_subprotocol(self):
        """101 with the Sec-WebSocket-Accept of RFC 6455 4.2.2 and the subprotocol "mqtt"
        [MQTT-6.0.0-5]."""
        c = self.client()
        self.assertEqual(c.status, 101)
        accept = base64.b64encode(hashlib.sha1((c.key + GUID).encode()).digest()).decode()
        self.assertEqual(c.headers["sec-websocket-accept"], accept)
        self.assertEqual(c.headers["sec-websocket-protocol"], "mqtt")

    def test_mqttv31_subprotocol_echoed(self):
        c = self.client(protocols=("chat", "mqttv3.1"))
        self.assertEqual(c.status, 101)
        self.assertEqual(c.headers["sec-websocket-protocol"], "mqttv3.1")

    def test_no_mqtt_subprotocol_refused(self):
        """The client MUST offer "mqtt" [MQTT-6.0.0-4]: without it, 400 and the socket closes."""
        for protocols in ((), ("chat",)):
            c = self.client(protocols=protocols)
            self.assertEqual(c.status, 400)
            self.assertEqual(c.sock.recv(10), b"")

    def test_other_path_not_found(self):
        self.assertEqual(self.client(path="/other").status, 404)

    def test_two_packets_in_one_frame(self):
        """CONNECT and SUBSCRIBE in one binary frame [MQTT-6.0.0-2]: CONNACK, SUBACK."""
        c = self.client()
        c.send_frame(connect_packet(unique("ws")) + subscribe_packet(1, [("ws/a", 1)]))
        self.assertEqual(c.recv_packet()[0], CONNACK)
        self.assertEqual(c.recv_packet(), (SUBACK, b"\x00\x01\x01"))

    def test_packet_split_over_frames(self):
        """A PUBLISH cut in two binary frames, then one cut over a fragmented message (binary
        without FIN + continuation): the server does not assume packets align with frames
        [MQTT-6.0.0-3]."""
        c = self.client()
        topic = unique("ws/split")
        c.send_frame(connect_packet(unique("ws")))
        self.assertEqual(c.recv_packet()[0], CONNACK)
        c.send_frame(subscribe_packet(1, [(topic, 0)]))
        self.assertEqual(c.recv_packet()[0], SUBACK)
        p = publish_packet(topic, b"x" * 300)
        c.send_frame(p[:5])
        c.send_frame(p[5:])
        kind, body = c.recv_packet()
        self.assertEqual(kind, PUBLISH)
        self.assertTrue(body.endswith(b"x" * 300))
        c.send_frame(p[:100], opcode=2, fin=False)
        c.send_frame(p[100:], opcode=0, fin=True)
        self.assertEqual(c.recv_packet(), (kind, body))

    def test_text_frame_closes(self):
        """MQTT packets go in binary frames; a text frame closes the connection
        [MQTT-6.0.0-1] (close frame 1002, then EOF)."""
        c = self.client()
        c.send_frame(connect_packet(unique("ws")))
        self.assertEqual(c.recv_packet()[0], CONNACK)
        c.send_frame(packet(12, 0), opcode=1)
        self.assertEqual(c.recv_frame(), (8, b"\x03\xea"))
        self.assertEqual(c.sock.recv(10), b"")

    def test_ping_answered_and_close_echoed(self):
        c = self.client()
        c.send_frame(b"hi", opcode=9)
        self.assertEqual(c.recv_frame(), (10, b"hi"))
        c.send_frame(b"\x03\xe8", opcode=8)
        self.assertEqual(c.recv_frame(), (8, b"\x03\xe8"))
        self.assertEqual(c.sock.recv(10), b"")

    def test_upgrade_timeout(self):
        """A connection that never sends its Upgrade request is closed after the handshake
        timeout (1 s)."""
        s = socket.create_connection(("127.0.0.1", self.ws), timeout=WAIT)
        start = time.monotonic()
        self.assertEqual(s.recv(10), b"")
        self.assertLess(time.monotonic() - start, 6)
        s.close()

    def test_wss_raw(self):
        c = WsClient(self.wss, tls=self.tls)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 101)
        c.send_frame(connect_packet(unique("wss")) + subscribe_packet(1, [("wss/a", 0)]))
        self.assertEqual(c.recv_packet()[0], CONNACK)
        self.assertEqual(c.recv_packet()[0], SUBACK)

    def paho_round_trip(self, port, tls):
        target = types.SimpleNamespace(host="127.0.0.1", port=port)
        ca = self.certs.path("ca.crt") if tls else None
        clients = []
        try:
            for _ in range(4):  # four workers: most clients move after CONNECT
                c = WsPaho(target, ca)
                clients.append(c)
                c.connect()
                c.subscribe("ws/%s" % c.client_id, 1)
            for c in clients:
                clients[0].publish("ws/%s" % c.client_id, c.client_id.encode() * 100, 1)
            for c in clients:
                self.assertEqual(c.recv().payload, c.client_id.encode() * 100)
        finally:
            for c in clients:
                c.disconnect()

    def test_large_messages_and_a_burst_over_wss(self):
        """900 KB payloads (one WebSocket frame and many TLS records each, more than the socket
        buffer holds) and 300 QoS 1 messages in a burst: partial TLS writes and backpressure."""
        target = types.SimpleNamespace(host="127.0.0.1", port=self.wss)
        ca = self.certs.path("ca.crt")
        sub, pub = WsPaho(target, ca), WsPaho(target, ca)
        try:
            sub.connect()
            pub.connect()
            topic = unique("ws/big")
            sub.subscribe(topic, 1)
            big = os.urandom(900 * 1024)
            for _ in range(3):
                pub.publish(topic, big, 1)
            for _ in range(3):
                self.assertEqual(sub.recv().payload, big)
            infos = [pub.publish(topic, b"%d" % i, 1, wait=False) for i in range(300)]
            for info in infos:
                info.wait_for_publish(WAIT)
            self.assertEqual([int(sub.recv().payload) for _ in range(300)], list(range(300)))
        finally:
            sub.disconnect()
            pub.disconnect()

    def test_paho_websockets(self):
        self.paho_round_trip(self.ws, tls=False)

    def test_paho_websockets_over_tls(self):
        self.paho_round_trip(self.wss, tls=True)

    def mqttjs(self, url, *args):
        r = subprocess.run([NODE, os.path.join(JS, "websocket.mjs"), url] + list(args), cwd=JS,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, "stdout: %s\nstderr: %s" % (r.stdout, r.stderr))
        self.assertTrue(json.loads(r.stdout.strip().splitlines()[-1])["ok"])

    @unittest.skipUnless(HAVE_MQTTJS, "node or tests/integration/v5/js/node_modules missing")
    def test_mqttjs_ws(self):
        self.mqttjs("ws://127.0.0.1:%d/mqtt" % self.ws)

    @unittest.skipUnless(HAVE_MQTTJS, "node or tests/integration/v5/js/node_modules missing")
    def test_mqttjs_wss(self):
        self.mqttjs("wss://localhost:%d/mqtt" % self.wss, self.certs.path("ca.crt"))


@unittest.skipIf(harness.is_mosquitto(), "mqttd's config file")
class FromConfigFile(unittest.TestCase):
    """Listeners declared in the YAML file with per-listener keys: a wss listener with its own
    certificate, path and connection limit (the harness's --listen replaces only the file's
    mqtt listeners)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mqttd-ws-")
        cls.certs = Certs(cls.dir)
        path = os.path.join(cls.dir, "mqttd.yaml")
        with open(path, "w") as f:
            f.write("listeners:\n"
                    "  - {protocol: mqtt, address: \"127.0.0.1:0\"}\n"
                    "  - protocol: wss\n"
                    "    address: \"127.0.0.1:0\"\n"
                    "    cert_file: %s\n"
                    "    key_file: %s\n"
                    "    path: /custom\n"
                    "    max_connections: 2\n" % (cls.certs.path("server2.crt"),
                                                   cls.certs.path("server2.key")))
        cls.broker = harness.start_broker(["--config", path])
        cls.wss = listener(cls.broker, "wss")
        cls.tls = ssl.create_default_context(cafile=cls.certs.path("ca.crt"))

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_path_certificate_and_connection_limit(self):
        other = WsClient(self.wss, path="/mqtt", tls=self.tls)
        self.assertEqual(other.status, 404)
        other.close()
        first = WsClient(self.wss, path="/custom", tls=self.tls)
        self.assertEqual(first.status, 101)
        self.assertEqual(first.sock.getpeercert()["serialNumber"], "2222")
        second = WsClient(self.wss, path="/custom", tls=self.tls)
        self.assertEqual(second.status, 101)
        with self.assertRaises((ssl.SSLError, OSError, harness.Closed)):
            WsClient(self.wss, path="/custom", tls=self.tls)  # the third: closed at accept
        first.close()
        deadline = time.monotonic() + WAIT
        while True:  # the slot frees once the broker has seen the close
            try:
                third = WsClient(self.wss, path="/custom", tls=self.tls)
                break
            except (ssl.SSLError, OSError, harness.Closed):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)  # polling a condition with a deadline
        self.assertEqual(third.status, 101)
        second.close()
        third.close()


if __name__ == "__main__":
    harness.main()
