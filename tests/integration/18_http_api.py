#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The HTTP API (node/http/api.h, docs/http-api.yaml) against a real mqttd and paho clients:
a publish through the API reaches a subscriber (QoS 0/1/2, base64, retained, 5.0
properties); the client list, one client, subscriptions, retained; a kick disconnects the
client; no key or a wrong key gets 401, no key file 404 with /metrics still open; bad
bodies 400; the OpenAPI file passes yamllint and names every path. Basic auth
(--http-basic-auth-file, a password file written by mosquitto_passwd, $7$ and $6$): a right
user and password passes, anything else is 401 with WWW-Authenticate for each scheme on.
mqttd only."""

import base64
import json
import os
import queue
import subprocess
import unittest
import urllib.error
import urllib.parse
import urllib.request

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

import harness
from harness import WAIT

HERE = os.path.dirname(os.path.abspath(__file__))
OPENAPI = os.path.join(HERE, "..", "..", "docs", "http-api.yaml")
KEY = "k-" + harness.unique("key")


def http_address(ready_line):
    return next(w[len("http="):] for w in ready_line.split() if w.startswith("http="))


def basic(user, password):
    """An Authorization field value for basic auth (RFC 7617)."""
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def call(address, method, path, body=None, key=KEY, authorization=None, headers_out=None):
    """(status, parsed JSON body or text). `authorization`, when given, is sent as is in place
    of the Bearer key; `headers_out`, a list, gets the response's header fields."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request("http://%s%s" % (address, path), data=data, method=method)
    if authorization is not None:
        req.add_header("Authorization", authorization)
    elif key is not None:
        req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            status, text, ctype = r.status, r.read().decode(), r.headers.get("Content-Type")
            if headers_out is not None:
                headers_out.extend(r.headers.items())
    except urllib.error.HTTPError as e:
        status, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type")
        if headers_out is not None:
            headers_out.extend(e.headers.items())
    if ctype == "application/json":
        return status, json.loads(text)
    return status, text


class Subscriber:
    def __init__(self, broker, topic, qos=2, version=paho.MQTTv311, client_id=None):
        self.messages = queue.Queue()
        self.client_id = client_id or harness.unique("sub")
        self.disconnected = queue.Queue()
        self.c = paho.Client(client_id=self.client_id, protocol=version)
        self.c.on_message = lambda _c, _u, m: self.messages.put(m)
        self.c.on_disconnect = lambda _c, _u, rc, *rest: self.disconnected.put(rc)
        subscribed = queue.Queue()
        self.c.on_subscribe = lambda *a: subscribed.put(True)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        self.c.subscribe(topic, qos)
        subscribed.get(timeout=WAIT)

    def stop(self):
        self.c.loop_stop()

    def next(self):
        return self.messages.get(timeout=WAIT)


@harness.only_mqttd("mqttd's HTTP API")
class HttpApiTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.tempfile.mkdtemp(prefix="mqttd-api-")
        keys = os.path.join(cls.tmp, "keys")
        with open(keys, "w") as f:
            f.write("# operators\n\n  %s  \nother-key\n" % KEY)
        cls.broker = harness.start_broker(["--http-api-key-file", keys])
        cls.http = http_address(cls.broker.ready_line)

    @classmethod
    def tearDownClass(cls):
        cls.broker.kill()
        harness.shutil.rmtree(cls.tmp, ignore_errors=True)

    def subscriber(self, topic, **kw):
        s = Subscriber(self.broker, topic, **kw)
        self.addCleanup(s.stop)
        return s

    def test_publish_qos0_1_2_reaches_a_subscriber(self):
        topic = "api/" + harness.unique("t")
        sub = self.subscriber(topic)
        for qos in (0, 1, 2):
            status, body = call(self.http, "POST", "/api/v1/publish",
                                {"topic": topic, "payload": "hello %d" % qos, "qos": qos})
            self.assertEqual(status, 200, body)
            self.assertEqual(body, {"topic": topic, "qos": qos, "retain": False})
            m = sub.next()
            self.assertEqual((m.topic, m.payload, m.qos), (topic, b"hello %d" % qos, qos))

    def test_publish_base64_retained_and_listed(self):
        topic = "api/" + harness.unique("r")
        raw = bytes(range(256))
        status, body = call(self.http, "POST", "/api/v1/publish",
                            {"topic": topic, "payload_base64": base64.b64encode(raw).decode(),
                             "qos": 1, "retain": True})
        self.assertEqual(status, 200, body)
        # Acknowledged after it is durable: a new subscriber gets it retained at once.
        sub = self.subscriber(topic)
        m = sub.next()
        self.assertEqual((m.payload, m.retain), (raw, True))
        status, body = call(self.http, "GET", "/api/v1/retained?limit=0")
        self.assertEqual(status, 200)
        item = [r for r in body["retained"] if r["topic"] == topic]
        self.assertEqual(item, [{"topic": topic, "qos": 1,
                                 "payload_base64": base64.b64encode(raw).decode()}])

    def test_publish_v5_properties_reach_a_v5_subscriber(self):
        topic = "api/" + harness.unique("p")
        sub = self.subscriber(topic, version=paho.MQTTv5)
        status, body = call(self.http, "POST", "/api/v1/publish", {
            "topic": topic, "payload": "{}", "qos": 1,
            "properties": {"content_type": "application/json", "response_topic": "r/x",
                           "correlation_data": "c1", "payload_format_indicator": 1,
                           "user_properties": [{"key": "a", "value": "b"}]}})
        self.assertEqual(status, 200, body)
        p = sub.next().properties
        self.assertEqual(p.ContentType, "application/json")
        self.assertEqual(p.ResponseTopic, "r/x")
        self.assertEqual(p.CorrelationData, b"c1")
        self.assertEqual(p.UserProperty, [("a", "b")])

    def test_bad_publish_bodies_are_400_with_an_error(self):
        for body in (b"not json", {"payload": "x"}, {"topic": "a/+"}, {"topic": "a", "qos": 3},
                     {"topic": "a", "payload": "x", "payload_base64": "eA=="},
                     {"topic": "$SYS/broker/uptime", "payload": "1"},
                     {"topic": "a", "retain": "yes"}):
            status, answer = call(self.http, "POST", "/api/v1/publish", body)
            self.assertEqual(status, 400, body)
            self.assertIsInstance(answer["error"], str)

    def test_clients_client_and_subscriptions(self):
        topic = "api/" + harness.unique("s") + "/#"
        sub = self.subscriber(topic, qos=1, version=paho.MQTTv5)
        status, body = call(self.http, "GET", "/api/v1/clients")
        self.assertEqual(status, 200)
        self.assertIn(sub.client_id, [c["client_id"] for c in body["clients"]])
        status, one = call(self.http, "GET", "/api/v1/clients/" + sub.client_id)
        self.assertEqual(status, 200, one)
        self.assertEqual((one["connected"], one["protocol_version"], one["subscriptions"]),
                         (True, "5.0", 1))
        status, body = call(self.http, "GET", "/api/v1/subscriptions")
        self.assertEqual(status, 200)
        mine = [s for s in body["subscriptions"] if s["client_id"] == sub.client_id]
        self.assertEqual([(s["filter"], s["qos"]) for s in mine], [(topic, 1)])
        status, body = call(self.http, "GET", "/api/v1/clients/" +
                            urllib.parse.quote("no/such client", safe=""))
        self.assertEqual(status, 404)
        self.assertIn("no/such client", body["error"])

    def test_kick_disconnects_the_client(self):
        sub = self.subscriber("api/kick", version=paho.MQTTv5)
        status, body = call(self.http, "DELETE", "/api/v1/clients/" + sub.client_id)
        self.assertEqual(status, 200, body)
        self.assertEqual(body, {"kicked": sub.client_id})
        sub.disconnected.get(timeout=WAIT)
        status, body = call(self.http, "DELETE", "/api/v1/clients/" + sub.client_id)
        self.assertEqual(status, 404, body)

    def test_kick_sends_a_v5_client_disconnect_0x98(self):
        """5.0: the server's DISCONNECT carries Administrative action [MQTT-3.14.2-1]."""
        cid = harness.unique("raw")
        raw = harness.RawClient(self.broker)
        self.addCleanup(raw.sock.close)
        raw.send(harness.packet(harness.CONNECT, 0, harness.mstr("MQTT") + bytes([5, 0x02])
                                + b"\x00\x3c" + b"\x00" + harness.mstr(cid)))
        raw.expect(harness.CONNACK)
        status, body = call(self.http, "DELETE", "/api/v1/clients/" + cid)
        self.assertEqual(status, 200, body)
        self.assertEqual(raw.expect(harness.DISCONNECT).body[:1], b"\x98")

    def test_without_or_with_a_wrong_key_401(self):
        for key in (None, "wrong", ""):
            status, body = call(self.http, "GET", "/api/v1/clients", key=key)
            self.assertEqual(status, 401, key)
            self.assertIn("API key", body["error"])
        status, _ = call(self.http, "GET", "/api/v1/clients", key="other-key")
        self.assertEqual(status, 200)

    def test_unknown_path_404_wrong_method_405_members_404_alone(self):
        status, body = call(self.http, "GET", "/api/v1/nothing")
        self.assertEqual(status, 404)
        self.assertIn("error", body)
        status, body = call(self.http, "GET", "/api/v1/publish")
        self.assertEqual(status, 405)
        self.assertIn("error", body)
        status, body = call(self.http, "GET", "/api/v1/cluster/members")
        self.assertEqual(status, 404)
        self.assertIn("not clustered", body["error"])

    def test_openapi_file_lints_and_names_every_path(self):
        lint = subprocess.run(["yamllint", "--strict", "-d",
                               "{extends: default, rules: {line-length: {max: 100}}}", OPENAPI],
                              capture_output=True, text=True)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        import yaml
        with open(OPENAPI) as f:
            doc = yaml.safe_load(f)
        self.assertTrue(doc["openapi"].startswith("3."))
        self.assertEqual(sorted(doc["paths"]), sorted([
            "/api/v1/publish", "/api/v1/clients", "/api/v1/clients/{client_id}",
            "/api/v1/subscriptions", "/api/v1/retained", "/api/v1/cluster/members"]))


MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"


def mosquitto_passwd(path, user, password, algorithm):
    """A user added by Mosquitto's own tool: $7$ (sha512-pbkdf2) or $6$ (sha512)."""
    args = [MOSQUITTO_PASSWD, "-H", algorithm, "-b"]
    if not os.path.exists(path):
        args.insert(1, "-c")
    subprocess.run(args + [path, user, password], check=True, capture_output=True)


def authenticate_fields(headers):
    return [v for k, v in headers if k.lower() == "www-authenticate"]


@harness.only_mqttd("mqttd's HTTP API")
class HttpApiBasicAuthTest(unittest.TestCase):
    """One node with an API key file and a basic auth file, one with the basic auth file only."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.tempfile.mkdtemp(prefix="mqttd-api-basic-")
        cls.users = os.path.join(cls.tmp, "users")
        mosquitto_passwd(cls.users, "ops", "s3cret:with:colons", "sha512-pbkdf2")
        mosquitto_passwd(cls.users, "legacy", "old-pw", "sha512")
        keys = os.path.join(cls.tmp, "keys")
        with open(keys, "w") as f:
            f.write(KEY + "\n")
        cls.both = harness.start_broker(["--http-api-key-file", keys,
                                         "--http-basic-auth-file", cls.users])
        cls.basic_only = harness.start_broker(["--http-basic-auth-file", cls.users])

    @classmethod
    def tearDownClass(cls):
        cls.both.kill()
        cls.basic_only.kill()
        harness.shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_right_user_and_password_pass_7_and_6_hashes(self):
        for broker in (self.both, self.basic_only):
            http = http_address(broker.ready_line)
            # The password holds ':' itself: only the first ':' splits (RFC 7617 2).
            for user, password in (("ops", "s3cret:with:colons"), ("legacy", "old-pw")):
                status, body = call(http, "GET", "/api/v1/clients",
                                    authorization=basic(user, password))
                self.assertEqual(status, 200, (user, body))
                self.assertIn("clients", body)

    def test_wrong_credentials_401_with_a_challenge_per_scheme(self):
        wrong = [basic("ops", "s3cret"), basic("ops", "s3cret:with:colons "),
                 basic("nobody", "old-pw"), basic("", ""), "Basic !!!not-base64",
                 "Basic " + base64.b64encode(b"ops").decode(), "Basic ", "Digest x"]
        for broker, schemes in ((self.both, {"Bearer", "Basic"}), (self.basic_only, {"Basic"})):
            http = http_address(broker.ready_line)
            for authorization in wrong + [None]:
                headers = []
                status, body = call(http, "GET", "/api/v1/clients", key=None,
                                    authorization=authorization, headers_out=headers)
                self.assertEqual(status, 401, authorization)
                self.assertIn("credentials", body["error"])
                fields = authenticate_fields(headers)
                self.assertEqual({f.split()[0] for f in fields}, schemes, fields)
                if "Basic" in schemes:
                    self.assertIn('Basic realm="mqttd", charset="UTF-8"', fields)

    def test_bearer_key_only_where_a_key_file_is_given(self):
        status, _ = call(http_address(self.both.ready_line), "GET", "/api/v1/clients")
        self.assertEqual(status, 200)
        status, _ = call(http_address(self.basic_only.ready_line), "GET", "/api/v1/clients")
        self.assertEqual(status, 401)

    def test_publish_with_basic_auth_reaches_a_subscriber(self):
        topic = "api/basic/" + harness.unique("t")
        sub = Subscriber(self.basic_only, topic)
        self.addCleanup(sub.stop)
        status, body = call(http_address(self.basic_only.ready_line), "POST", "/api/v1/publish",
                            {"topic": topic, "payload": "via basic", "qos": 1},
                            authorization=basic("legacy", "old-pw"))
        self.assertEqual(status, 200, body)
        self.assertEqual(sub.messages.get(timeout=WAIT).payload, b"via basic")

    def test_unreadable_or_empty_basic_auth_file_stops_the_start(self):
        empty = os.path.join(self.tmp, "empty")
        with open(empty, "w") as f:
            f.write("# nobody\n")
        for path, text in (("/nonexistent/users", "/nonexistent/users"), (empty, "no user")):
            proc = subprocess.run([harness.broker_bin(), "--listen", "127.0.0.1:0",
                                   "--http-listen", "127.0.0.1:0", "--persistence", "false",
                                   "--http-basic-auth-file", path],
                                  capture_output=True, text=True, timeout=WAIT)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(text, proc.stderr)


@harness.only_mqttd("mqttd's HTTP API")
class HttpApiDisabledTest(unittest.TestCase):

    def test_no_key_file_api_404_and_metrics_open(self):
        broker = harness.start_broker()
        self.addCleanup(broker.kill)
        http = http_address(broker.ready_line)
        status, body = call(http, "POST", "/api/v1/publish", {"topic": "a", "payload": "x"})
        self.assertEqual(status, 404)
        self.assertIn("disabled", body["error"])
        status, _ = call(http, "GET", "/metrics", key=None)
        self.assertEqual(status, 200)
        status, _ = call(http, "GET", "/healthz", key=None)
        self.assertEqual(status, 200)

    def test_unreadable_key_file_stops_the_start(self):
        proc = subprocess.run([harness.broker_bin(), "--listen", "127.0.0.1:0",
                               "--http-listen", "127.0.0.1:0", "--persistence", "false",
                               "--http-api-key-file", "/nonexistent/keys"],
                              capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("/nonexistent/keys", proc.stderr)


if __name__ == "__main__":
    unittest.main()
