# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of fuzz_connection (tests/fuzz/corpus/connection): real client
sessions, captured from mosquitto_pub/mosquitto_sub talking to a mosquitto broker through a
recording proxy (only the client's bytes are kept), plus two built by hand (5.0 enhanced
authentication, which the mosquitto clients cannot do).

Each seed is fuzz_connection's layout: one set-up byte, then the client's byte stream. Every
session is written twice: whole (set-up 0, or 2 with access control) and in chunks.

  /usr/bin/python3 tests/fuzz/capture_connection_seeds.py [OUT_DIR]
"""
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                          "corpus", "connection")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A TCP proxy to the broker that records what each client sends."""

    def __init__(self, broker_port):
        self.broker_port = broker_port
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.sessions = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.server.accept()
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            record = bytearray()
            with self.lock:
                self.sessions.append(record)
            threading.Thread(target=self.pump, args=(client, upstream, record), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self):
        time.sleep(0.3)
        with self.lock:
            sessions, self.sessions = self.sessions, []
        return [bytes(s) for s in sessions]


def capture(recorder, name, commands, access):
    """Runs `commands` ((args, stdin) pairs, started 0.4 s apart) and records their sessions."""
    procs = []
    for args, stdin in commands:
        full = [args[0], "-h", "127.0.0.1", "-p", str(recorder.port)] + args[1:]
        p = subprocess.Popen(full, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        if stdin is not None:
            p.stdin.write(stdin)
        p.stdin.close()
        procs.append(p)
        time.sleep(0.4)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    for i, session in enumerate(recorder.take()):
        write(f"{name}-{i}", session, access)


def write(name, stream, access):
    setup = 2 if access else 0
    for suffix, first in (("whole", setup), ("chunks", setup | (37 << 2) | 1)):
        with open(os.path.join(OUT, f"{name}-{suffix}"), "wb") as f:
            f.write(bytes([first]) + stream)


# Hand-built packets for what the mosquitto clients cannot send.
def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def enhanced_auth_session():
    method = b"\x15" + utf8("HMAC-SHA256-CHALLENGE")
    props = method
    connect = packet(0x10, utf8("MQTT") + bytes([5, 0x02]) + struct.pack(">H", 30) +
                     varint(len(props)) + props + utf8("auth-client"))
    # The challenge is random, so this answer is wrong: the node refuses it (0x87 path).
    answer = method + b"\x16" + struct.pack(">H", 32) + hashlib.sha256(b"x").digest()
    auth = packet(0xF0, bytes([0x18]) + varint(len(answer)) + answer)
    return connect + auth


def topic_alias_session():
    props = b"\x11" + struct.pack(">I", 60) + b"\x22" + struct.pack(">H", 10)  # expiry, alias max
    connect = packet(0x10, utf8("MQTT") + bytes([5, 0x00]) + struct.pack(">H", 0) +
                     varint(len(props)) + props + utf8("alias-client"))
    alias = b"\x23" + struct.pack(">H", 1)
    first = packet(0x32, utf8("a/alias") + struct.pack(">H", 1) + varint(len(alias)) + alias +
                   b"one")
    second = packet(0x30, utf8("") + varint(len(alias)) + alias + b"two")
    sub = packet(0x82, struct.pack(">H", 2) + b"\x00" + utf8("a/#") + b"\x2e")  # nl, rap, rh 2
    unsub = packet(0xA2, struct.pack(">H", 3) + b"\x00" + utf8("a/#"))
    ping = packet(0xC0, b"")
    disconnect = packet(0xE0, b"\x04\x00")  # 0x04: with will
    return connect + first + second + sub + unsub + ping + disconnect


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    broker_port = free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    rec = Recorder(broker_port)
    try:
        pub, sub = "mosquitto_pub", "mosquitto_sub"
        capture(rec, "v31-pub-qos1", [([pub, "-V", "mqttv31", "-i", "c31", "-t", "a/b", "-m",
                                        "hello", "-q", "1"], None)], False)
        capture(rec, "v311-pub-qos2-retain", [([pub, "-V", "mqttv311", "-t", "a/r", "-m", "kept",
                                                "-q", "2", "-r"], None)], False)
        capture(rec, "v311-user-will", [([pub, "-V", "mqttv311", "-u", "fuzz", "-P", "secret",
                                          "--will-topic", "a/will", "--will-payload", "bye",
                                          "--will-qos", "1", "--will-retain", "-t", "a/x", "-m",
                                          "m", "-q", "1"], None)], True)
        capture(rec, "v5-pub-props", [([pub, "-V", "mqttv5", "-t", "a/b", "-m", "x", "-q", "1",
                                        "-D", "publish", "message-expiry-interval", "60",
                                        "-D", "publish", "user-property", "k", "v",
                                        "-D", "publish", "content-type", "text/plain",
                                        "-D", "publish", "response-topic", "a/resp",
                                        "-D", "connect", "session-expiry-interval", "30",
                                        "-D", "connect", "receive-maximum", "5"], None)], False)
        capture(rec, "v5-pub-lines", [([pub, "-V", "mqttv5", "-u", "fuzz", "-P", "secret", "-t",
                                        "users/fuzz/x", "-l", "-q", "2"], b"one\ntwo\nthree\n")],
                True)
        for version, qos in (("mqttv311", "1"), ("mqttv5", "2"), ("mqttv31", "0")):
            capture(rec, f"{version}-sub-qos{qos}",
                    [([sub, "-V", version, "-i", f"sub-{version}", "-t", "a/#", "-t", "b/+/c",
                       "-q", qos, "-C", "2", "-c"] +
                      (["-D", "connect", "session-expiry-interval", "60"]
                       if version == "mqttv5" else []), None),
                     ([pub, "-V", version, "-t", "a/one", "-m", "1", "-q", qos], None),
                     ([pub, "-V", version, "-t", "b/x/c", "-m", "2", "-q", qos], None)], False)
        capture(rec, "v5-sub-shared",
                [([sub, "-V", "mqttv5", "-t", "$share/g/a/#", "-t", "a/self", "-C", "1", "-W",
                   "2"], None),
                 ([pub, "-V", "mqttv5", "-t", "a/self", "-m", "s"], None)], False)
        capture(rec, "v311-unsub", [([sub, "-V", "mqttv311", "-t", "a/b", "-U", "a/b"], None)],
                False)
    finally:
        broker.terminate()
        broker.wait()
        shutil.rmtree(tmp)
    write("v5-enhanced-auth", enhanced_auth_session(), False)
    write("v5-topic-alias", topic_alias_session(), False)


if __name__ == "__main__":
    main()
