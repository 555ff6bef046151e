#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""mqttd's HTTP server (--http-listen, node/http): /healthz, /readyz and /metrics (Prometheus
text) on the port the ready line names (http=HOST:PORT); 404, 405, 400 for garbage (and the
server goes on), /readyz 503 "shutting down" after SIGTERM, and no server with --http-listen ''.
mqttd only."""

import re
import signal
import socket
import time
import unittest
import urllib.error
import urllib.request

import harness
from harness import WAIT, RawClient

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?'
                    r' ([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|Inf))$')
META = re.compile(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$")


def http_address(ready_line):
    for word in ready_line.split():
        if word.startswith("http="):
            return word[len("http="):]
    return None


def get(address, path, method="GET"):
    """(status, body) of one request."""
    req = urllib.request.Request("http://%s%s" % (address, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse_metrics(text):
    """{(name, labels): value}; AssertionError on a line that is no sample, HELP or TYPE, or on a
    sample whose family has no HELP and TYPE before it."""
    samples, help_, type_ = {}, set(), {}
    for line in text.splitlines():
        if not line:
            continue
        m = META.match(line)
        if m:
            (help_.add(m.group(2)) if m.group(1) == "HELP" else type_.__setitem__(m.group(2),
                                                                                  m.group(3)))
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        name = m.group(1)
        family = name
        for suffix in ("_bucket", "_sum", "_count"):  # a histogram's samples
            if name.endswith(suffix) and type_.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        assert family in help_ and family in type_, "no HELP/TYPE before %r" % line
        samples[(name, m.group(2) or "")] = float(m.group(4))
    return samples, type_


def wait_metric(address, name, value, labels=""):
    deadline = time.monotonic() + WAIT
    while True:
        samples, _ = parse_metrics(get(address, "/metrics")[1])
        if samples.get((name, labels)) == value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s%s is %r, not %r" % (name, labels,
                                                         samples.get((name, labels)), value))
        time.sleep(0.05)  # polling another process's figure with a deadline


@harness.only_mqttd("mqttd's HTTP server")
class HttpTest(unittest.TestCase):

    def setUp(self):
        self.broker = harness.start_broker()  # the harness passes --http-listen 127.0.0.1:0
        self.addCleanup(self.broker.kill)
        self.http = http_address(self.broker.ready_line)
        self.assertTrue(self.http, self.broker.ready_line)
        self.assertTrue(self.http.startswith("127.0.0.1:"), self.http)
        self.assertNotEqual(self.http, "127.0.0.1:0")

    def test_healthz_and_readyz(self):
        self.assertEqual(get(self.http, "/healthz"), (200, "ok\n"))
        self.assertEqual(get(self.http, "/readyz"), (200, "ready\n"))

    def test_metrics_parse_and_count_clients(self):
        status, text = get(self.http, "/metrics")
        self.assertEqual(status, 200)
        samples, types = parse_metrics(text)
        for name in ("mqttd_clients_connected", "mqttd_subscriptions", "mqttd_retained_messages",
                     "mqttd_uptime_seconds", "mqttd_ready", "mqttd_store_messages",
                     "mqttd_store_queue_entries"):
            self.assertEqual(types.get(name), "gauge", name)
        self.assertEqual(types.get("mqttd_store_batches_total"), "counter")
        self.assertEqual(samples[("mqttd_ready", "")], 1)
        self.assertTrue(any(n == "mqttd_build_info" for n, _ in samples))
        self.assertEqual(samples[("mqttd_clients_connected", "")], 0)
        self.assertNotIn("mqttd_cluster_members", types)  # not clustered
        c = RawClient(self.broker)
        c.connect()
        c.subscribe("http/#")
        wait_metric(self.http, "mqttd_clients_connected", 1)
        wait_metric(self.http, "mqttd_subscriptions", 1)
        c.disconnect()
        wait_metric(self.http, "mqttd_clients_connected", 0)

    def test_latency_histograms_connections_and_rocksdb_figures(self):
        # A QoS 1 and a QoS 2 delivery, acknowledged by the subscriber: one PUBACK and one
        # PUBCOMP latency each; the persistent subscriber's copies go through the store's group
        # commit.
        sub, pub = RawClient(self.broker), RawClient(self.broker)
        sub_id = harness.unique("lat-sub")
        sub.connect(sub_id, clean=False)
        self.assertEqual(sub.subscribe([("lat/#", 2)]), [2])
        pub.connect()
        pub.publish("lat/1", b"one", qos=1, pid=1)
        pub.publish("lat/2", b"two", qos=2, pid=2)
        self.assertEqual(sub.recv_publish().qos, 1)
        self.assertEqual(sub.recv_publish().qos, 2)
        wait_metric(self.http, "mqttd_puback_latency_seconds_count", 1, '{qos="1"}')
        wait_metric(self.http, "mqttd_puback_latency_seconds_count", 1, '{qos="2"}')
        wait_metric(self.http, "mqttd_connections", 2, '{listener="tcp",protocol="3.1.1"}')
        samples, types = parse_metrics(get(self.http, "/metrics")[1])
        self.assertEqual(types.get("mqttd_puback_latency_seconds"), "histogram")
        self.assertEqual(samples[("mqttd_puback_latency_seconds_bucket",
                                  '{qos="1",le="+Inf"}')], 1)
        self.assertEqual(types.get("mqttd_storage_write_seconds"), "histogram")
        self.assertGreaterEqual(samples[("mqttd_storage_write_seconds_count", "")], 1)
        self.assertEqual(types.get("mqttd_connections_total"), "counter")
        self.assertGreaterEqual(
            samples[("mqttd_connections_total", '{listener="tcp",protocol="3.1.1"}')], 2)
        for name in ("mqttd_storage_estimated_keys", "mqttd_storage_sst_bytes",
                     "mqttd_storage_live_sst_bytes", "mqttd_storage_memtable_bytes",
                     "mqttd_storage_pending_compaction_bytes", "mqttd_storage_wal_bytes",
                     "mqttd_sessions", "mqttd_queued_messages", "mqttd_inflight_messages"):
            self.assertEqual(types.get(name), "gauge", name)
        self.assertGreater(samples[("mqttd_storage_wal_bytes", "")], 0)
        self.assertNotIn("mqttd_forward_latency_seconds", types)  # not clustered
        wait_metric(self.http, "mqttd_sessions", 2)  # the shards' sweep: once a second
        wait_metric(self.http, "mqttd_inflight_messages", 0)  # both acknowledged
        pub.disconnect()
        wait_metric(self.http, "mqttd_connections", 1, '{listener="tcp",protocol="3.1.1"}')
        sub.disconnect()
        wait_metric(self.http, "mqttd_sessions", 1)  # the persistent one stays
        # Kept for the offline session: the gauge follows (the sessions keep the totals).
        pub = RawClient(self.broker)
        pub.connect()
        for i in range(3):
            pub.publish("lat/3", b"queued", qos=1, pid=10 + i)
        wait_metric(self.http, "mqttd_queued_messages", 3)
        sub = RawClient(self.broker)
        sub.connect(sub_id, clean=False)
        for i in range(3):
            p = sub.recv_publish()
            sub.send(harness.pid_packet(harness.PUBACK, p.publish_pid))
        sub.disconnect()
        wait_metric(self.http, "mqttd_queued_messages", 0)
        pub.disconnect()

    def test_content_type_of_metrics(self):
        with urllib.request.urlopen("http://%s/metrics" % self.http, timeout=WAIT) as r:
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))

    def test_unknown_path_404_other_method_405(self):
        self.assertEqual(get(self.http, "/nope")[0], 404)
        self.assertEqual(get(self.http, "/metrics", method="POST")[0], 405)
        self.assertEqual(get(self.http, "/healthz", method="DELETE")[0], 405)

    def test_garbage_request_gets_400_and_server_goes_on(self):
        host, _, port = self.http.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=WAIT) as s:
            s.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer)
        # An idle connection that never sends does not hold the server up either.
        idle = socket.create_connection((host, int(port)), timeout=WAIT)
        self.addCleanup(idle.close)
        self.assertEqual(get(self.http, "/healthz"), (200, "ok\n"))

    def test_readyz_503_while_shutting_down(self):
        # A subscriber that never reads, sent more than its socket takes: on SIGTERM the node
        # waits (up to its 3 s grace) for that output to drain, and /readyz must say so meanwhile.
        sub = RawClient(self.broker)
        sub.connect()
        sub.subscribe("big/#")
        sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        pub = RawClient(self.broker)
        pub.connect()
        for i in range(24):
            pub.publish("big/%d" % i, b"x" * 256 * 1024)
        pub.ping()  # every publish was taken
        self.broker.proc.send_signal(signal.SIGTERM)
        answers = []
        while self.broker.alive():
            try:
                answers.append(get(self.http, "/readyz"))
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                break
        self.assertIn((503, "shutting down\n"), answers)
        self.assertEqual(set(answers) - {(503, "shutting down\n"), (200, "ready\n")}, set())
        if (200, "ready\n") in answers:  # only before the signal was taken, never after a 503
            self.assertLess(answers.index((200, "ready\n")),
                            answers.index((503, "shutting down\n")))
            self.assertNotIn((200, "ready\n"), answers[answers.index((503, "shutting down\n")):])
        sub.close()
        pub.close()
        self.assertEqual(self.broker.proc.wait(WAIT), 0)


@harness.only_mqttd("mqttd's HTTP server")
class HttpDisabledTest(unittest.TestCase):

    def test_empty_http_listen_disables_it(self):
        b = harness.start_broker(["--http-listen", ""])
        self.addCleanup(b.kill)
        self.assertIsNone(http_address(b.ready_line), b.ready_line)
        self.assertNotIn("http=", b.logs)


if __name__ == "__main__":
    harness.main()
