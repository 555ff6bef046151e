#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""MQTT over TLS (mqttd's --tls-listen): mosquitto_pub/sub with --cafile over TLS 1.2 and 1.3,
mutual TLS (client certificate required: accepted, missing, from another CA, expired), the
username taken from the certificate's CN or SAN, the handshake timeout, certificate reload on
SIGHUP, a bad certificate path at start-up; with a password file and an ACL, the certificate's
identity is the client's user name and the credential (the ACL's user rules apply to it). Certificates are made by the openssl command line
(certs.py) in a temporary directory. Four workers: most clients move to their session's home
worker after CONNECT, so the TLS hand-over between workers is exercised throughout."""

import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import types
import unittest

import harness
from certs import Certs
from harness import WAIT, PahoClient, connect_packet, packet, unique

SKIP = harness.is_mosquitto()


def listener(broker, protocol):
    """(host, port) of the listener the ready line names `protocol=HOST:PORT`."""
    for word in broker.ready_line.split():
        if word.startswith(protocol + "="):
            host, _, port = word[len(protocol) + 1:].rpartition(":")
            return host.strip("[]"), int(port)
    raise AssertionError("no %s= in the ready line %r" % (protocol, broker.ready_line))


def wait_log(broker, text, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in broker.logs:
            return
        time.sleep(0.05)  # polling the log with a deadline
    raise AssertionError("no %r in the broker log:\n%s" % (text, broker.log_tail()))


def mosquitto(tool, port, certs, topic, extra=(), timeout=20):
    """Runs mosquitto_pub or mosquitto_sub against localhost:port with --cafile."""
    cmd = [tool, "-h", "localhost", "-p", str(port), "--cafile", certs.path("ca.crt"),
           "-t", topic, "-i", unique(tool[10:])] + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def tls_socket(port, certs, version=None, cert=None):
    """A TLS connection to 127.0.0.1:port checking the server against ca.crt for localhost."""
    ctx = ssl.create_default_context(cafile=certs.path("ca.crt"))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if cert is not None:
        ctx.load_cert_chain(certs.path(cert + ".crt"), certs.path(cert + ".key"))
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    return ctx.wrap_socket(sock, server_hostname="localhost")


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError("closed after %r" % data)
        data += chunk
    return data


def mqtt_connect(sock):
    """CONNECT over `sock` and the CONNACK's return code."""
    sock.sendall(connect_packet(unique("raw")))
    connack = read_exact(sock, 4)
    assert connack[0] == 0x20, connack
    return connack[3]


class TlsBase(unittest.TestCase):
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mqttd-tls-")
        cls.certs = Certs(cls.dir)
        # The listener reads live.crt/live.key, which the reload test replaces.
        shutil.copy(cls.certs.path("server.crt"), cls.certs.path("live.crt"))
        shutil.copy(cls.certs.path("server.key"), cls.certs.path("live.key"))
        cls.broker = harness.start_broker([
            "--workers", "4", "--log-level", "debug", "--tls-listen", "127.0.0.1:0",
            "--tls-cert", cls.certs.path("live.crt"), "--tls-key", cls.certs.path("live.key"),
            "--tls-ca", cls.certs.path("ca.crt")] + list(cls.EXTRA))
        cls.port = listener(cls.broker, "mqtts")[1]

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def pub_sub(self, extra=()):
        """A retained message published and read back by mosquitto_pub/sub over TLS."""
        topic = unique("tls")
        pub = mosquitto("mosquitto_pub", self.port, self.certs, topic,
                        ["-m", "hello", "-r", "-q", "1"] + list(extra))
        self.assertEqual(pub.returncode, 0, pub.stderr)
        sub = mosquitto("mosquitto_sub", self.port, self.certs, topic,
                        ["-C", "1", "-W", "10"] + list(extra))
        self.assertEqual(sub.returncode, 0, sub.stderr)
        self.assertEqual(sub.stdout.strip(), "hello")


@unittest.skipIf(SKIP, "mqttd's TLS flags")
class Tls(TlsBase):
    EXTRA = ("--tls-handshake-timeout", "1")

    def test_tls12_mosquitto_pub_sub(self):
        """mosquitto_pub/sub --tls-version tlsv1.2: the server certificate verifies against
        --cafile for localhost; the negotiated version is 1.2."""
        self.pub_sub(["--tls-version", "tlsv1.2"])
        with tls_socket(self.port, self.certs, ssl.TLSVersion.TLSv1_2) as s:
            self.assertEqual(s.version(), "TLSv1.2")
            self.assertEqual(mqtt_connect(s), 0)

    def test_tls13_mosquitto_pub_sub(self):
        self.pub_sub(["--tls-version", "tlsv1.3"])
        with tls_socket(self.port, self.certs, ssl.TLSVersion.TLSv1_3) as s:
            self.assertEqual(s.version(), "TLSv1.3")
            self.assertEqual(mqtt_connect(s), 0)

    def test_paho_clients_across_workers(self):
        """Eight paho clients over TLS, each subscribed to its own topic and sent a message:
        with four workers most of them moved to another worker after CONNECT."""
        target = types.SimpleNamespace(host="127.0.0.1", port=self.port)
        clients = []
        try:
            for _ in range(8):
                c = PahoClient(target)
                c.c.tls_set(ca_certs=self.certs.path("ca.crt"))  # it names 127.0.0.1 too
                c.connect()
                clients.append(c)
            for c in clients:
                c.subscribe("tls/%s" % c.client_id, 1)
            for c in clients:
                clients[0].publish("tls/%s" % c.client_id, b"to " + c.client_id.encode(), 1)
            for c in clients:
                self.assertEqual(c.recv().payload, b"to " + c.client_id.encode())
        finally:
            for c in clients:
                c.disconnect()

    def test_large_messages_and_a_burst(self):
        """900 KB payloads (many TLS records each, more than a socket buffer) and 300 QoS 1
        messages in a burst: reads of several records, partial writes, backpressure."""
        target = types.SimpleNamespace(host="127.0.0.1", port=self.port)
        sub, pub = PahoClient(target), PahoClient(target)
        for c in (sub, pub):
            c.c.tls_set(ca_certs=self.certs.path("ca.crt"))
        try:
            sub.connect()
            pub.connect()
            topic = unique("tls/big")
            sub.subscribe(topic, 1)
            big = bytes(range(256)) * 3600
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

    def test_plain_mqtt_on_tls_port_is_closed(self):
        """A CONNECT in clear text is no ClientHello: the handshake fails, the socket closes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        s.sendall(connect_packet("clear"))
        self.assertEqual(s.recv(100)[:1] in (b"", b"\x15"), True)  # EOF or a TLS alert
        s.close()

    def test_handshake_timeout(self):
        """A TCP connection that never sends a ClientHello is closed after the handshake
        timeout (1 s here), long before the CONNECT timeout (10 s)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        start = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - start
        s.close()
        self.assertEqual(data, b"")
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 6)
        wait_log(self.broker, "mqtts handshake not finished within 1000 ms")

    def test_reload_on_sighup(self):
        """SIGHUP reloads the certificate: a new connection sees the new serial, one opened
        before keeps its session and works on."""
        with tls_socket(self.port, self.certs) as old:
            self.assertEqual(old.getpeercert()["serialNumber"], "1111")
            self.assertEqual(mqtt_connect(old), 0)
            shutil.copy(self.certs.path("server2.crt"), self.certs.path("live.crt"))
            shutil.copy(self.certs.path("server2.key"), self.certs.path("live.key"))
            reloads = self.broker.logs.count("reloaded")
            self.broker.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + WAIT
            while self.broker.logs.count("reloaded") == reloads:
                self.assertLess(time.monotonic(), deadline, self.broker.log_tail())
                time.sleep(0.05)  # polling the log with a deadline
            with tls_socket(self.port, self.certs) as new:
                self.assertEqual(new.getpeercert()["serialNumber"], "2222")
                self.assertEqual(mqtt_connect(new), 0)
            old.sendall(packet(12, 0))  # PINGREQ on the connection from before the reload
            self.assertEqual(read_exact(old, 2), b"\xd0\x00")
        self.assertTrue(self.broker.alive())


@unittest.skipIf(SKIP, "mqttd's TLS flags")
class MutualTls(TlsBase):
    EXTRA = ("--tls-require-client-cert", "--tls-username-from-cert", "cn")

    def refused(self, extra):
        failures = self.broker.logs.count("TLS handshake failed")
        pub = mosquitto("mosquitto_pub", self.port, self.certs, unique("m"),
                        ["-m", "x", "-q", "1"] + list(extra))
        self.assertNotEqual(pub.returncode, 0, pub.stdout)
        deadline = time.monotonic() + WAIT
        while self.broker.logs.count("TLS handshake failed") == failures:
            self.assertLess(time.monotonic(), deadline, self.broker.log_tail())
            time.sleep(0.05)  # polling the log with a deadline
        return self.broker.logs

    def test_client_certificate_accepted_username_from_cn(self):
        """A client certificate from the CA is accepted; its CN is the connection's MQTT
        username (logged; the auth layer takes it from Transport::certificate_username)."""
        self.pub_sub(["--cert", self.certs.path("alice.crt"), "--key",
                      self.certs.path("alice.key")])
        wait_log(self.broker, "client certificate identity 'alice'")

    def test_no_client_certificate_refused(self):
        logs = self.refused([])
        self.assertIn("peer did not return a certificate", logs)

    def test_certificate_from_another_ca_refused(self):
        logs = self.refused(["--cert", self.certs.path("mallory.crt"), "--key",
                             self.certs.path("mallory.key")])
        self.assertIn("certificate verify failed", logs)

    def test_expired_certificate_refused(self):
        self.refused(["--cert", self.certs.path("expired.crt"), "--key",
                      self.certs.path("expired.key")])

    def test_username_from_san(self):
        """--tls-username-from-cert san: the first e-mail/DNS/URI SAN."""
        b = harness.start_broker([
            "--log-level", "debug", "--tls-listen", "127.0.0.1:0",
            "--tls-cert", self.certs.path("server.crt"), "--tls-key",
            self.certs.path("server.key"), "--tls-ca", self.certs.path("ca.crt"),
            "--tls-username-from-cert", "san"])
        try:
            with tls_socket(listener(b, "mqtts")[1], self.certs, cert="alice") as s:
                self.assertEqual(mqtt_connect(s), 0)
            wait_log(b, "client certificate identity 'alice@example.com'")
        finally:
            b.stop()


@unittest.skipIf(SKIP, "mqttd's TLS flags")
class ReloadOnFileChange(TlsBase):
    """--tls-reload-interval 1: a replaced certificate (a Kubernetes Secret update) is picked
    up without a signal; a broken one is reported once and the previous one stays."""
    EXTRA = ("--tls-reload-interval", "1")

    def test_changed_files_are_reloaded(self):
        with open(self.certs.path("live.crt"), "w") as f:
            f.write("not a certificate\n")
        wait_log(self.broker, "failed, the previous certificate stays")
        with tls_socket(self.port, self.certs) as s:
            self.assertEqual(s.getpeercert()["serialNumber"], "1111")
        shutil.copy(self.certs.path("server2.crt"), self.certs.path("live.crt"))
        shutil.copy(self.certs.path("server2.key"), self.certs.path("live.key"))
        wait_log(self.broker, "reloaded")
        with tls_socket(self.port, self.certs) as s:
            self.assertEqual(s.getpeercert()["serialNumber"], "2222")
            self.assertEqual(mqtt_connect(s), 0)


@unittest.skipIf(SKIP, "mqttd's TLS flags")
class StartUp(unittest.TestCase):
    def run_mqttd(self, *args):
        d = tempfile.mkdtemp(prefix="mqttd-tls-")
        try:
            return subprocess.run(
                [harness.broker_bin(), "--listen", "127.0.0.1:0", "--http-listen", "",
                 "--data-dir", d] + list(args),
                capture_output=True, text=True, timeout=WAIT)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_missing_certificate_file_stops_start_up(self):
        r = self.run_mqttd("--tls-listen", "127.0.0.1:0", "--tls-cert", "/nonexistent/server.crt",
                           "--tls-key", "/x.key")
        self.assertEqual(r.returncode, 1)
        self.assertIn("certificate file '/nonexistent/server.crt'", r.stderr)

    def test_websocket_path_without_slash_stops_start_up(self):
        r = self.run_mqttd("--ws-listen", "127.0.0.1:0", "--ws-path", "mqtt")
        self.assertEqual(r.returncode, 1)
        self.assertIn("path 'mqtt' must start with '/'", r.stderr)

    def test_no_certificate_stops_start_up(self):
        r = self.run_mqttd("--wss-listen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("a certificate file and a key file are required", r.stderr)


if __name__ == "__main__":
    harness.main()


@unittest.skipIf(SKIP, "mqttd's TLS flags")
class CertificateIdentity(TlsBase):
    """--tls-username-from-cn with --password-file and --acl-file: a client with a verified
    certificate (CN alice) connects without a user name or password (no anonymous client is
    allowed: a password file is given), and the ACL's `user alice` rules are its rules."""

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="mqttd-tls-auth-")
        passwords = cls.files + "/passwd"
        subprocess.run(["mosquitto_passwd", "-c", "-b", passwords, "bob", "secret"], check=True,
                       capture_output=True)
        with open(cls.files + "/acl", "w") as f:
            f.write("user alice\ntopic readwrite alice/#\n")
        cls.EXTRA = ("--tls-require-client-cert", "--tls-username-from-cert", "cn",
                     "--password-file", passwords, "--acl-file", cls.files + "/acl")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.files, ignore_errors=True)

    def alice(self):
        return ["--cert", self.certs.path("alice.crt"), "--key", self.certs.path("alice.key")]

    def test_identity_is_the_user_name_for_the_acl(self):
        topic = "alice/" + unique("t")
        pub = mosquitto("mosquitto_pub", self.port, self.certs, topic,
                        ["-m", "mine", "-r", "-q", "1"] + self.alice())
        self.assertEqual(pub.returncode, 0, pub.stderr + self.broker.log_tail())
        sub = mosquitto("mosquitto_sub", self.port, self.certs, topic,
                        ["-C", "1", "-W", "10"] + self.alice())
        self.assertEqual((sub.returncode, sub.stdout.strip()), (0, "mine"), sub.stderr)

    def test_acl_denies_what_the_identity_may_not_read(self):
        """[MQTT-3.9.3]: a SUBSCRIBE outside alice's rules gets return code 0x80 (3.1.1)."""
        topic = "other/" + unique("t")
        sub = mosquitto("mosquitto_sub", self.port, self.certs, topic,
                        ["-C", "1", "-W", "3", "-d"] + self.alice())
        self.assertIn("128", sub.stdout + sub.stderr, "SUBACK granted: " + sub.stdout)
