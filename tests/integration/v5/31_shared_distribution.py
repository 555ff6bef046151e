#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Shared subscription member choice measured over 10,000 messages per strategy
(--shared-subscription-strategy): round_robin, random, sticky, hash_clientid, hash_topic.

Three 5.0 members with QoS 1 subscriptions (acknowledging at once) and QoS 1 publishes, with an
inflight window and queue large enough that nothing is dropped. Per-member counts are printed.
"""

import select
import socket
import struct
import sys
import threading
import time
import unittest

from harness5 import *  # noqa: F401,F403
from harness5 import (RawClient5, main, publish5_packet, start_broker, sub_options, unique,
                      wait_until, PUBACK, PUBLISH)

N = 10000
MEMBERS = 3
BROKER_ARGS = ["--max-inflight", "500", "--max-queued-messages", "50000"]


def _frames(buf):
    """Split complete packets off buf: returns (list of (first byte, body), rest)."""
    out, i = [], 0
    n = len(buf)
    while n - i >= 2:
        mult, length, j = 1, 0, i + 1
        while j < n:
            b = buf[j]
            length += (b & 0x7F) * mult
            mult *= 128
            j += 1
            if not b & 0x80:
                break
        else:
            break
        if n - j < length:
            break
        out.append((buf[i], buf[j:j + length]))
        i = j + length
    return out, buf[i:]


class FastMember:
    """A connected, subscribed 5.0 client whose thread reads PUBLISH packets as fast as they
    come, PUBACKs them in batches and counts them by key(topic, payload)."""

    def __init__(self, broker, name, filt, key):
        self.name = name
        self.client = RawClient5(broker)
        self.client_id = unique(name)
        self.client.connect5(self.client_id)
        assert self.client.subscribe5([(filt, sub_options(qos=1))]) == [1]
        self.key = key
        self.counts = {}
        self.total = 0
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        sock, buf = self.client.sock, bytes(self.client.buf)
        try:
            while not self.stop_flag.is_set():
                r, _, _ = select.select([sock], [], [], 0.1)
                if not r:
                    continue
                data = sock.recv(1 << 16)
                if not data:
                    return
                frames, buf = _frames(buf + data)
                acks = []
                with self.lock:
                    for first, body in frames:
                        if first >> 4 != PUBLISH:
                            raise AssertionError("%s: unexpected packet type %d"
                                                 % (self.name, first >> 4))
                        tlen = struct.unpack_from("!H", body, 0)[0]
                        topic = body[2:2 + tlen]
                        off = 2 + tlen
                        if (first >> 1) & 3:
                            acks.append(bytes([PUBACK << 4, 2]) + body[off:off + 2])
                            off += 2
                        plen, mult = 0, 1  # property length (variable byte integer)
                        while True:
                            b = body[off]
                            off += 1
                            plen += (b & 0x7F) * mult
                            mult *= 128
                            if not b & 0x80:
                                break
                        payload = body[off + plen:]
                        k = self.key(topic, payload)
                        self.counts[k] = self.counts.get(k, 0) + 1
                        self.total += 1
                if acks:
                    sock.sendall(b"".join(acks))
        except Exception as e:  # noqa: BLE001
            self.error = e

    def stop(self):
        self.stop_flag.set()
        self.thread.join(WAIT)
        self.client.close()


def publish_many(broker, items, client_id=None):
    """Publish (topic, payload) items at QoS 1 with a window of outstanding PUBACKs."""
    c = RawClient5(broker)
    c.connect5(client_id or unique("pub"))
    sock = c.sock
    acked = [0]
    done = threading.Event()
    total = len(items)

    def reader():
        buf = bytes(c.buf)
        while acked[0] < total:
            r, _, _ = select.select([sock], [], [], WAIT)
            if not r:
                return
            data = sock.recv(1 << 16)
            if not data:
                return
            frames, buf = _frames(buf + data)
            acked[0] += sum(1 for f, _ in frames if f >> 4 == PUBACK)
        done.set()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    sent = 0
    deadline = time.monotonic() + 60
    while sent < total:
        if sent - acked[0] >= 1000:
            if time.monotonic() > deadline or not th.is_alive():
                raise AssertionError("publisher stalled at %d sent, %d acked" % (sent, acked[0]))
            time.sleep(0.002)  # window full: poll the acknowledgement count (bounded)
            continue
        batch = items[sent:sent + 200]
        sock.sendall(b"".join(publish5_packet(t, p, qos=1, pid=(sent + i) % 65535 + 1)
                              for i, (t, p) in enumerate(batch)))
        sent += len(batch)
    if not done.wait(60):
        raise AssertionError("only %d of %d PUBACKs" % (acked[0], total))
    th.join(WAIT)
    c.disconnect5()


class Distribution(unittest.TestCase):
    STRATEGY = None

    def setUp(self):
        self.broker = start_broker(BROKER_ARGS + ["--shared-subscription-strategy",
                                                  self.STRATEGY])
        self.members = []

    def tearDown(self):
        for m in self.members:
            m.stop()
        self.broker.stop()

    def start_members(self, filt, key=lambda topic, payload: b""):
        self.members = [FastMember(self.broker, "m%d" % i, filt, key) for i in range(MEMBERS)]

    def wait_all(self, n):
        def done():
            for m in self.members:
                if m.error:
                    raise m.error
            return sum(m.total for m in self.members) >= n
        wait_until(done, 90, "%d messages at the members" % n)
        # a positive barrier: one more message through a plain subscriber would not help here
        # (different session); all N arrived, now check no extra copies within a short time
        end = time.monotonic() + QUIET
        while time.monotonic() < end:
            if sum(m.total for m in self.members) > n:
                break
            time.sleep(0.05)
        self.assertEqual(sum(m.total for m in self.members), n, "duplicates delivered")
        if not self.broker.alive():
            self.fail("broker died")

    def report(self, title, rows):
        sys.stderr.write("\n[%s] %s\n" % (self.STRATEGY, title))
        for r in rows:
            sys.stderr.write("    %s\n" % r)


class RoundRobin(Distribution):
    STRATEGY = "round_robin"

    def test_round_robin_even_split_over_10000(self):
        """round_robin: 10,000 QoS 1 messages, per-member counts within +-1 of each other."""
        t = unique("rr")
        self.start_members("$share/dist/" + t)
        publish_many(self.broker, [(t, b"%d" % i) for i in range(N)])
        self.wait_all(N)
        counts = [m.total for m in self.members]
        self.report("per member", [counts])
        self.assertLessEqual(max(counts) - min(counts), 1, counts)


class Random(Distribution):
    STRATEGY = "random"

    def test_random_each_member_between_20_and_46_percent(self):
        """random: each of 3 members gets 20%..46% of 10,000 messages."""
        t = unique("rnd")
        self.start_members("$share/dist/" + t)
        publish_many(self.broker, [(t, b"%d" % i) for i in range(N)])
        self.wait_all(N)
        counts = [m.total for m in self.members]
        self.report("per member", [counts, ["%.1f%%" % (100.0 * c / N) for c in counts]])
        for c in counts:
            self.assertTrue(0.20 * N <= c <= 0.46 * N, counts)


class Sticky(Distribution):
    STRATEGY = "sticky"

    def test_sticky_one_member_gets_all_while_online(self):
        """sticky: one member gets all 10,000; when it goes away, one other member gets all
        of the next 300."""
        t = unique("st")
        self.start_members("$share/dist/" + t)
        publish_many(self.broker, [(t, b"%d" % i) for i in range(N)])
        self.wait_all(N)
        counts = [m.total for m in self.members]
        self.report("per member", [counts])
        self.assertEqual(sorted(counts), [0, 0, N], counts)
        chosen = counts.index(N)
        self.members[chosen].stop()
        rest = [m for i, m in enumerate(self.members) if i != chosen]
        before = [m.total for m in rest]
        # The broker notices the close asynchronously. Barrier: a CONNECT with the same
        # client id is handled after the old connection is detached (taken over if needed).
        again = RawClient5(self.broker)
        again.connect5(self.members[chosen].client_id)
        again.disconnect5()
        publish_many(self.broker, [(t, b"after%d" % i) for i in range(300)])
        wait_until(lambda: sum(m.total for m in rest) - sum(before) >= 300, 30,
                   "300 messages at the remaining members")
        after = [m.total - b for m, b in zip(rest, before)]
        self.report("after the sticky member left", [after])
        self.assertEqual(sorted(after), [0, 300], after)


class HashClientId(Distribution):
    STRATEGY = "hash_clientid"

    def test_hash_clientid_same_publisher_same_member(self):
        """hash_clientid: 20 publishers x 500 messages; each publisher's messages all go to
        one member; more than one member is used."""
        t = unique("hc")
        self.start_members("$share/dist/" + t,
                           key=lambda topic, payload: payload.split(b":", 1)[0])
        pubs = 20
        threads, errors = [], []

        def run(i):
            try:
                publish_many(self.broker, [(t, b"p%d:%d" % (i, j)) for j in range(N // pubs)],
                             client_id=unique("hpub%d" % i))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        for i in range(pubs):
            threads.append(threading.Thread(target=run, args=(i,)))
            threads[-1].start()
        for th in threads:
            th.join(90)
        if errors:
            raise errors[0]
        self.wait_all(N)
        per_pub = {}
        for mi, m in enumerate(self.members):
            for k, c in m.counts.items():
                per_pub.setdefault(k.decode(), {})[mi] = c
        self.report("per member", [[m.total for m in self.members]])
        self.report("per publisher {member: count}",
                    ["%s: %s" % (k, per_pub[k]) for k in sorted(per_pub, key=lambda s: int(s[1:]))])
        for k, d in per_pub.items():
            self.assertEqual(len(d), 1, "publisher %s split over members %r" % (k, d))
            self.assertEqual(sum(d.values()), N // pubs)
        self.assertGreater(sum(1 for m in self.members if m.total), 1)


class HashTopic(Distribution):
    STRATEGY = "hash_topic"

    def test_hash_topic_same_topic_same_member(self):
        """hash_topic: 20 topics x 500 messages from one publisher; each topic's messages all
        go to one member; more than one member is used."""
        base = unique("ht")
        self.start_members("$share/dist/%s/+" % base, key=lambda topic, payload: topic)
        topics = ["%s/%d" % (base, i) for i in range(20)]
        publish_many(self.broker, [(topics[i % 20], b"%d" % i) for i in range(N)])
        self.wait_all(N)
        per_topic = {}
        for mi, m in enumerate(self.members):
            for k, c in m.counts.items():
                per_topic.setdefault(k.decode(), {})[mi] = c
        self.report("per member", [[m.total for m in self.members]])
        self.report("per topic {member: count}",
                    ["%s: %s" % (k.rsplit("/", 1)[1], per_topic[k])
                     for k in sorted(per_topic, key=lambda s: int(s.rsplit("/", 1)[1]))])
        for k, d in per_topic.items():
            self.assertEqual(len(d), 1, "topic %s split over members %r" % (k, d))
            self.assertEqual(sum(d.values()), N // 20)
        self.assertGreater(sum(1 for m in self.members if m.total), 1)


if __name__ == "__main__":
    main()
