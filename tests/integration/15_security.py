#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Password file and ACL (docs/security.md), 3.1.1 and 5.0: CONNACK codes for good and bad
passwords and refused anonymous clients, files written by the real mosquitto_passwd and by
`mqttctl passwd` (the latter also accepted by a real Mosquitto), ACL allow and deny for each
rule kind (user, pattern %u and %c, client, address) on PUBLISH, SUBSCRIBE and delivery,
retained messages and wills filtered, start-up errors, and SIGHUP reload."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "v5"))

from harness5 import (WAIT, Broker5TestCase, RawClient, broker_bin, free_port,  # noqa: E402
                      is_mosquitto, unique)

MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
MOSQUITTO = "/usr/sbin/mosquitto"
V3_BAD_USER_OR_PASSWORD, V3_NOT_AUTHORIZED, V3_SUBACK_FAILURE = 0x04, 0x05, 0x80
V5_BAD_USER_OR_PASSWORD, V5_NOT_AUTHORIZED = 0x86, 0x87

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

ACL = """\
# anonymous clients (when allowed): read-only public area
topic read public/#

user alice
topic readwrite alice/#
topic read shared/#
topic deny shared/secret
topic write will/alice

user bob
topic readwrite bob/#
topic write shared/#
topic read will/#

user carol
topic readwrite carol/#

pattern readwrite users/%u/#
pattern read clients/%c/#

client special-device
topic readwrite devices/special/#

address 127.0.0.0/8
topic read local/#

address 192.0.2.0/24
topic read remote/#
"""


def mqttctl_bin():
    return os.path.join(os.path.dirname(broker_bin()), "mqttctl")


def mosquitto_passwd(path, user, password, algorithm):
    args = [MOSQUITTO_PASSWD, "-H", algorithm, "-b"]
    if not os.path.exists(path):
        args.insert(1, "-c")
    subprocess.run(args + [path, user, password], check=True, capture_output=True)


def mqttctl_passwd(path, user, password):
    """Adds `user` with the password on stdin (not a terminal), as an operator would pipe it."""
    r = subprocess.run([mqttctl_bin(), "passwd", path, user], input=password + "\n", text=True,
                       capture_output=True, timeout=WAIT)
    if r.returncode != 0:
        raise AssertionError("mqttctl passwd failed: %s" % r.stderr)


def write_files(tmpdir):
    """alice by mosquitto_passwd ($7$), bob by mosquitto_passwd -H sha512 ($6$), carol by
    mqttctl passwd ($7$). Returns (password file, ACL file)."""
    passwords = os.path.join(tmpdir, "passwd")
    mosquitto_passwd(passwords, "alice", USERS["alice"], "sha512-pbkdf2")
    mosquitto_passwd(passwords, "bob", USERS["bob"], "sha512")
    mqttctl_passwd(passwords, "carol", USERS["carol"])
    acl = os.path.join(tmpdir, "acl")
    with open(acl, "w") as f:
        f.write(ACL)
    return passwords, acl


def wait_for_log(broker, text, after=0):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if text in broker.logs[after:]:
            return
        time.sleep(0.05)  # polling a condition with a deadline
    raise AssertionError("no log line %r; tail:\n%s" % (text, broker.log_tail()))


@unittest.skipIf(is_mosquitto(), "mqttd options (--password-file, --acl-file)")
class SecurityTestCase(Broker5TestCase):
    EXTRA_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="mqttd-security-")
        cls.password_file, cls.acl_file = write_files(cls.files)
        cls.BROKER_ARGS = ("--password-file", cls.password_file,
                           "--acl-file", cls.acl_file) + tuple(cls.EXTRA_ARGS)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.files, ignore_errors=True)

    def client(self, version, user, client_id=None, **kw):
        """A connected raw client of `version` (4: 3.1.1, 5: 5.0) logged in as `user`."""
        password = USERS[user] if user else None
        if version == 5:
            return self.raw5(client_id, username=user, password=password, **kw)
        return self.raw(client_id, username=user, password=password, **kw)

    def subscribe(self, c, version, topic_filter, qos=1):
        if version == 5:
            return c.subscribe5([(topic_filter, qos)])[0]
        return c.subscribe([(topic_filter, qos)])[0]

    def publish(self, c, version, topic, payload, qos=1, retain=False):
        """Publishes; returns the 5.0 PUBACK reason (3.1.1: None, after its PUBACK)."""
        if version == 5:
            return c.publish5(topic, payload, qos=qos, retain=retain)
        c.publish(topic, payload, qos=qos, retain=retain)
        return None

    def assert_delivered_only(self, c, version, payloads):
        got = [(c.recv_pub() if version == 5 else c.recv_publish()).payload
               for _ in payloads]
        self.assertEqual(got, payloads)
        if version == 5:
            c.expect_no_publish()
        else:
            c.expect_none()


class PasswordTest(SecurityTestCase):
    """Default --allow-anonymous with a password file: false."""

    def connack(self, version, username=None, password=None):
        if version == 5:
            c = self.raw5_unconnected()
            return c.connect5(unique("pw"), expect_rc=None, username=username,
                              password=password).rc
        c = self.raw_unconnected()
        return c.connect(unique("pw"), expect_rc=None, username=username, password=password)[1]

    def test_mosquitto_passwd_pbkdf2_accepted_3_1_1_table_3_1(self):
        self.assertEqual(self.connack(4, "alice", USERS["alice"]), 0)
        self.assertEqual(self.connack(5, "alice", USERS["alice"]), 0)

    def test_mosquitto_passwd_sha512_accepted(self):
        self.assertEqual(self.connack(4, "bob", USERS["bob"]), 0)
        self.assertEqual(self.connack(5, "bob", USERS["bob"]), 0)

    def test_mqttctl_passwd_accepted(self):
        self.assertEqual(self.connack(4, "carol", USERS["carol"]), 0)
        self.assertEqual(self.connack(5, "carol", USERS["carol"]), 0)

    def test_wrong_password_refused_MQTT_3_2_2_5(self):
        # 3.1.1 return code 4 (bad user name or password), then the server closes [MQTT-3.2.2-5].
        c = self.raw_unconnected()
        _, rc = c.connect(unique("pw"), expect_rc=None, username="alice", password="nope")
        self.assertEqual(rc, V3_BAD_USER_OR_PASSWORD)
        c.wait_closed()
        # 5.0 reason code 0x86 (3.2.2.2), then close [MQTT-3.2.2-7].
        c5 = self.raw5_unconnected()
        ack = c5.connect5(unique("pw"), expect_rc=None, username="alice", password="nope")
        self.assertEqual(ack.rc, V5_BAD_USER_OR_PASSWORD)
        c5.wait_closed()

    def test_unknown_user_and_missing_password_refused(self):
        self.assertEqual(self.connack(4, "mallory", "x"), V3_BAD_USER_OR_PASSWORD)
        self.assertEqual(self.connack(5, "mallory", "x"), V5_BAD_USER_OR_PASSWORD)
        self.assertEqual(self.connack(4, "alice", None), V3_BAD_USER_OR_PASSWORD)
        self.assertEqual(self.connack(5, "alice", None), V5_BAD_USER_OR_PASSWORD)

    def test_anonymous_refused_not_authorized(self):
        self.assertEqual(self.connack(4), V3_NOT_AUTHORIZED)
        self.assertEqual(self.connack(5), V5_NOT_AUTHORIZED)

    def test_paho_login(self):
        c = self.paho(connect=False, username="alice", password=USERS["alice"])
        c.connect()
        bad = self.paho(connect=False, username="alice", password="wrong")
        bad.connect(expect_rc=V3_BAD_USER_OR_PASSWORD)

    def test_mosquitto_pub_and_sub_login(self):
        t = "carol/" + unique()
        sub = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", self.broker.host, "-p", str(self.broker.port),
             "-u", "carol", "-P", USERS["carol"], "-t", t, "-C", "1", "-q", "1", "-d"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # Wait for the SUBACK line of mosquitto_sub -d, then publish.
            deadline = time.monotonic() + WAIT
            seen = ""
            while "SUBACK" not in seen and time.monotonic() < deadline:
                seen += sub.stdout.readline()
            self.assertIn("SUBACK", seen)
            subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p", str(self.broker.port),
                            "-u", "carol", "-P", USERS["carol"], "-t", t, "-m", "hi", "-q", "1"],
                           check=True, timeout=WAIT, capture_output=True)
            out, _ = sub.communicate(timeout=WAIT)
            self.assertIn("hi", out)
            bad = subprocess.run(["mosquitto_pub", "-h", self.broker.host, "-p",
                                  str(self.broker.port), "-u", "carol", "-P", "wrong", "-t", t,
                                  "-m", "x"], timeout=WAIT, capture_output=True, text=True)
            self.assertNotEqual(bad.returncode, 0)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()


class AnonymousAllowedTest(SecurityTestCase):
    EXTRA_ARGS = ("--allow-anonymous", "true")

    def test_anonymous_accepted_and_limited_to_anonymous_rules(self):
        for version in (4, 5):
            c = self.client(version, None)
            bad = V5_NOT_AUTHORIZED if version == 5 else V3_SUBACK_FAILURE
            self.assertEqual(self.subscribe(c, version, "public/#"), 1)
            self.assertEqual(self.subscribe(c, version, "alice/#"), bad)

    def test_password_still_checked_when_given(self):
        c = self.raw_unconnected()
        self.assertEqual(c.connect(unique(), expect_rc=None, username="alice",
                                   password="wrong")[1], V3_BAD_USER_OR_PASSWORD)


class AclTest(SecurityTestCase):

    def test_user_rules_publish_MQTT_3_3_5(self):
        for version in (4, 5):
            alice = self.client(version, "alice")
            watcher = self.client(5, "alice")
            t = "alice/" + unique()
            self.assertEqual(self.subscribe(watcher, 5, t), 1)
            rc = self.publish(alice, version, t, b"mine")
            self.assertIn(rc, (None, 0))
            self.assertEqual(watcher.recv_pub().payload, b"mine")
            # bob's tree: denied. 5.0 PUBACK 0x87; 3.1.1 acknowledged and dropped.
            bob_watcher = self.client(5, "bob")
            t2 = "bob/" + unique()
            self.assertEqual(self.subscribe(bob_watcher, 5, t2), 1)
            rc = self.publish(alice, version, t2, b"not-for-bob")
            self.assertEqual(rc, V5_NOT_AUTHORIZED if version == 5 else None)
            bob_watcher.expect_no_publish()

    def test_denied_qos2_publish_5_0_pubrec_0x87_and_3_1_1_completes(self):
        c5 = self.client(5, "alice")
        self.assertEqual(c5.publish5("bob/x", b"x", qos=2), V5_NOT_AUTHORIZED)
        c3 = self.client(4, "alice")
        c3.publish("bob/x", b"x", qos=2)  # PUBREC, PUBREL, PUBCOMP as usual
        c3.ping()

    def test_user_rules_subscribe_MQTT_3_9_3(self):
        for version in (4, 5):
            bad = V5_NOT_AUTHORIZED if version == 5 else V3_SUBACK_FAILURE
            alice = self.client(version, "alice")
            self.assertEqual(self.subscribe(alice, version, "alice/#"), 1)
            self.assertEqual(self.subscribe(alice, version, "shared/+"), 1)
            self.assertEqual(self.subscribe(alice, version, "bob/#"), bad)
            self.assertEqual(self.subscribe(alice, version, "#"), bad)
            self.assertEqual(self.subscribe(alice, version, "shared/secret"), bad)

    def test_read_denied_at_delivery_for_wildcard_subscription(self):
        for version in (4, 5):
            alice = self.client(version, "alice")
            self.assertEqual(self.subscribe(alice, version, "shared/#"), 1)
            bob = self.client(5, "bob")
            self.assertEqual(bob.publish5("shared/secret", b"hidden", qos=1), 0)
            self.assertEqual(bob.publish5("shared/open", b"visible", qos=1), 0)
            self.assert_delivered_only(alice, version, [b"visible"])

    def test_retained_messages_obey_read_rules(self):
        bob = self.client(5, "bob")
        self.assertEqual(bob.publish5("shared/secret", b"r-hidden", qos=1, retain=True), 0)
        self.assertEqual(bob.publish5("shared/open", b"r-visible", qos=1, retain=True), 0)
        try:
            for version in (4, 5):
                alice = self.client(version, "alice")
                self.assertEqual(self.subscribe(alice, version, "shared/#"), 1)
                self.assert_delivered_only(alice, version, [b"r-visible"])
        finally:
            bob.publish5("shared/secret", b"", qos=1, retain=True)
            bob.publish5("shared/open", b"", qos=1, retain=True)

    def test_will_obeys_write_rules(self):
        for version in (4, 5):
            bob = self.client(5, "bob")
            self.assertEqual(self.subscribe(bob, 5, "will/#"), 1)
            self.assertEqual(self.subscribe(bob, 5, "bob/#"), 1)
            # alice may write will/alice: her will is published on an abnormal close.
            a = self.client(version, "alice", will=dict(topic="will/alice", payload=b"bye"))
            a.close()
            self.assertEqual(bob.recv_pub().payload, b"bye")
            # ... but not bob/...: that will is dropped.
            a2 = self.client(version, "alice", will=dict(topic="bob/will", payload=b"no"))
            a2.close()
            bob.expect_no_publish()

    def test_pattern_user_name(self):
        for version in (4, 5):
            bad = V5_NOT_AUTHORIZED if version == 5 else V3_SUBACK_FAILURE
            alice = self.client(version, "alice")
            self.assertEqual(self.subscribe(alice, version, "users/alice/#"), 1)
            self.assertEqual(self.subscribe(alice, version, "users/bob/#"), bad)
            self.publish(alice, version, "users/alice/note", b"n1")
            self.assert_delivered_only(alice, version, [b"n1"])
            bob = self.client(version, "bob")
            self.assertEqual(self.subscribe(bob, version, "users/bob/#"), 1)

    def test_pattern_client_id(self):
        for version in (4, 5):
            bad = V5_NOT_AUTHORIZED if version == 5 else V3_SUBACK_FAILURE
            cid = unique("dev")
            c = self.client(version, "carol", client_id=cid)
            self.assertEqual(self.subscribe(c, version, "clients/%s/#" % cid), 1)
            self.assertEqual(self.subscribe(c, version, "clients/someone-else/#"), bad)
            # read only: publishing there is denied
            rc = self.publish(c, version, "clients/%s/x" % cid, b"x")
            self.assertEqual(rc, V5_NOT_AUTHORIZED if version == 5 else None)

    def test_client_section(self):
        for version in (4, 5):
            bad = V5_NOT_AUTHORIZED if version == 5 else V3_SUBACK_FAILURE
            special = self.client(version, "carol", client_id="special-device")
            self.assertEqual(self.subscribe(special, version, "devices/special/#"), 1)
            self.publish(special, version, "devices/special/t", b"s")
            self.assert_delivered_only(special, version, [b"s"])
            special.close()
            other = self.client(version, "carol", client_id=unique("other"))
            self.assertEqual(self.subscribe(other, version, "devices/special/#"), bad)
            rc = self.publish(other, version, "devices/special/t", b"o")
            self.assertEqual(rc, V5_NOT_AUTHORIZED if version == 5 else None)

    def test_address_section(self):
        # The tests connect from 127.0.0.1: the 127.0.0.0/8 section applies, 192.0.2.0/24 not.
        for version in (4, 5):
            bad = V5_NOT_AUTHORIZED if version == 5 else V3_SUBACK_FAILURE
            c = self.client(version, "carol")
            self.assertEqual(self.subscribe(c, version, "local/#"), 1)
            self.assertEqual(self.subscribe(c, version, "remote/#"), bad)


class StartupTest(unittest.TestCase):

    @unittest.skipIf(is_mosquitto(), "mqttd options")
    def test_bad_files_stop_startup_naming_file_and_line(self):
        tmp = tempfile.mkdtemp(prefix="mqttd-security-")
        try:
            acl = os.path.join(tmp, "bad.acl")
            with open(acl, "w") as f:
                f.write("user a\ntopic read ok/#\ntopic read bad/#/x\n")
            passwd = os.path.join(tmp, "bad.passwd")
            with open(passwd, "w") as f:
                f.write("alice:plaintext\n")
            for args, where in (
                    (["--acl-file", acl], acl + ":3: bad topic filter 'bad/#/x'"),
                    (["--password-file", passwd], passwd + ":1: not a $6$ or $7$ hash"),
                    (["--acl-file", os.path.join(tmp, "missing")], "missing: cannot be read")):
                r = subprocess.run([broker_bin(), "--listen", "127.0.0.1:0", "--http-listen", "",
                                    "--data-dir", os.path.join(tmp, "data")] + args,
                                   capture_output=True, text=True, timeout=WAIT)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(where, r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipUnless(os.access(MOSQUITTO, os.X_OK), "needs the mosquitto broker")
class MosquittoReadsMqttctlFileTest(unittest.TestCase):
    """A password file written by `mqttctl passwd` works in a real Mosquitto."""

    def test_mosquitto_accepts_mqttctl_password(self):
        tmp = tempfile.mkdtemp(prefix="mqttd-security-")
        os.chmod(tmp, 0o755)
        proc = None
        try:
            passwd = os.path.join(tmp, "passwd")
            subprocess.run([mqttctl_bin(), "passwd", "-c", "-b", passwd, "dora", "dora-pw"],
                           check=True, timeout=WAIT)
            subprocess.run([mqttctl_bin(), "passwd", "-b", passwd, "eve", "eve-pw"], check=True,
                           timeout=WAIT)
            subprocess.run([mqttctl_bin(), "passwd", "-D", passwd, "eve"], check=True,
                           timeout=WAIT)
            os.chmod(passwd, 0o644)
            port = free_port()
            conf = os.path.join(tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
                        "persistence false\nlog_dest stderr\n" % (port, passwd))
            os.chmod(conf, 0o644)
            proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + WAIT
            while True:
                try:
                    c = RawClient("127.0.0.1", port)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.05)  # polling a condition with a deadline
            self.assertEqual(c.connect(unique(), expect_rc=None, username="dora",
                                       password="dora-pw")[1], 0)
            c.close()
            for user, password in (("dora", "wrong"), ("eve", "eve-pw")):
                c = RawClient("127.0.0.1", port)
                self.assertNotEqual(c.connect(unique(), expect_rc=None, username=user,
                                              password=password)[1], 0)
                c.close()
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipIf(is_mosquitto(), "mqttd's SIGHUP reload")
class ReloadTest(Broker5TestCase):
    """SIGHUP re-reads both files; a connected client's next operation uses the new ACL; a bad
    new file keeps the old one."""

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="mqttd-security-")
        cls.passwd = os.path.join(cls.files, "passwd")
        mosquitto_passwd(cls.passwd, "alice", USERS["alice"], "sha512-pbkdf2")
        cls.acl = os.path.join(cls.files, "acl")
        with open(cls.acl, "w") as f:
            f.write("user alice\ntopic readwrite alice/#\n")
        cls.BROKER_ARGS = ("--password-file", cls.passwd, "--acl-file", cls.acl)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.files, ignore_errors=True)

    def reload(self, expect):
        mark = len(self.broker.logs)
        self.broker.proc.send_signal(signal.SIGHUP)
        wait_for_log(self.broker, expect, after=mark)

    def test_sighup_reload(self):
        c5 = self.raw5(username="alice", password=USERS["alice"])
        c3 = self.raw(username="alice", password=USERS["alice"])
        self.assertEqual(c5.publish5("news/x", b"1", qos=1), V5_NOT_AUTHORIZED)
        self.assertEqual(c5.subscribe5([("news/#", 1)]), [V5_NOT_AUTHORIZED])
        self.assertEqual(c3.subscribe([("news/#", 1)]), [V3_SUBACK_FAILURE])
        bad = self.raw5_unconnected().connect5(unique(), expect_rc=None, username="frank",
                                               password="frank-pw")
        self.assertEqual(bad.rc, V5_BAD_USER_OR_PASSWORD)

        with open(self.acl, "w") as f:
            f.write("user alice\ntopic readwrite alice/#\ntopic readwrite news/#\n"
                    "user frank\ntopic read news/#\n")
        mqttctl_passwd(self.passwd, "frank", "frank-pw")
        self.reload("SIGHUP: password and ACL files reloaded")
        # The same connections: their next operation uses the new rules.
        self.assertEqual(c3.subscribe([("news/#", 1)]), [1])
        self.assertEqual(c5.publish5("news/x", b"2", qos=1), 0)
        self.assertEqual(c3.recv_publish().payload, b"2")
        self.raw5(username="frank", password="frank-pw")

        # A broken file: logged, the previous files stay in force.
        with open(self.acl, "w") as f:
            f.write("user alice\ntopic readwrite news/#/broken\n")
        self.reload("SIGHUP: reload failed, keeping the previous password and ACL files")
        self.assertIn(self.acl + ":2:", self.broker.logs)
        self.assertEqual(c5.publish5("news/x", b"3", qos=1), 0)
        self.assertEqual(c3.recv_publish().payload, b"3")
        self.assert_broker_alive()


@unittest.skipIf(is_mosquitto(), "mqttd's --auth-reload-interval")
class FileWatchTest(Broker5TestCase):
    """--auth-reload-interval: the password and ACL files are re-read when their modification
    time, size or inode change (a Kubernetes Secret update), without SIGHUP; a bad new file keeps
    the old one and is logged once."""

    @classmethod
    def setUpClass(cls):
        cls.files = tempfile.mkdtemp(prefix="mqttd-security-")
        cls.passwd = os.path.join(cls.files, "passwd")
        mosquitto_passwd(cls.passwd, "alice", USERS["alice"], "sha512-pbkdf2")
        cls.acl = os.path.join(cls.files, "acl")
        with open(cls.acl, "w") as f:
            f.write("user alice\ntopic readwrite alice/#\n")
        cls.BROKER_ARGS = ("--password-file", cls.passwd, "--acl-file", cls.acl,
                           "--auth-reload-interval", "1")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.files, ignore_errors=True)

    def replace(self, path, text):
        """As a Secret update does: a new file renamed over the old one (new inode)."""
        tmp = path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    def test_changed_files_reloaded_without_sighup(self):
        c3 = self.raw(username="alice", password=USERS["alice"])
        self.assertEqual(c3.subscribe([("news/#", 1)]), [V3_SUBACK_FAILURE])
        mark = len(self.broker.logs)
        self.replace(self.acl, "user alice\ntopic readwrite alice/#\ntopic readwrite news/#\n")
        mqttctl_passwd(self.passwd, "frank", "frank-pw")
        wait_for_log(self.broker, "password or ACL file changed: reloaded", after=mark)
        self.assertEqual(c3.subscribe([("news/#", 1)], pid=2), [1])  # the same connection
        self.raw5(username="frank", password="frank-pw")

        mark = len(self.broker.logs)
        self.replace(self.acl, "user alice\ntopic readwrite news/#/broken\n")
        wait_for_log(self.broker, "reload failed, keeping the previous ones", after=mark)
        self.assertIn(self.acl + ":2:", self.broker.logs[mark:])
        c3.publish("news/x", b"still", qos=1, pid=3)  # the previous ACL is still in force
        self.assertEqual(c3.recv_publish().payload, b"still")
        # Reported once per change, not at every check.
        c3.ping(timeout=WAIT)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            c3.ping()
        self.assertEqual(self.broker.logs[mark:].count("reload failed"), 1)
        self.assert_broker_alive()


if __name__ == "__main__":
    unittest.main(verbosity=2)
