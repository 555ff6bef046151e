# SPDX-License-Identifier: Apache-2.0
"""Raw-socket MQTT 3.1.1 loads for bench/curves: many subscription filters held open, many retained
messages stored, and a wildcard SUBSCRIBE timed until its last retained message has arrived.

Packets are built with the encoders of tests/integration/harness.py. Each connection writes and
reads at once (poll), so a long pipeline of SUBSCRIBEs or PUBLISHes never deadlocks on full socket
buffers. Timed reads only add up byte counts (every retained delivery has the same size); the
packets are parsed and checked after the clock stops, so Python's speed is not in the figure.
"""

import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests",
                                "integration"))
from harness import connect_packet, publish_packet, subscribe_packet  # noqa: E402

SUBACK, PUBACK, CONNACK, PUBLISH = 9, 4, 2, 3
FILTERS_PER_CONN = 10000  # filters held by one connection
FILTERS_PER_PACKET = 200
RETAINED_PAYLOAD = b"r" * 16


def split_packets(data):
    """Yields (first byte, body, end offset) of each complete packet at the front of data; stops
    at a partial one (the caller keeps data[end:])."""
    pos, n = 0, len(data)
    while n - pos >= 2:
        rl, shift, i = 0, 0, pos + 1
        while i < n:
            b = data[i]
            rl |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                break
            shift += 7
        else:
            return
        if i + rl > n:
            return
        yield data[pos], data[i:i + rl], i + rl
        pos = i + rl


class Conn:
    """One MQTT 3.1.1 clean-session connection, keep-alive off (it may sit idle for minutes)."""

    def __init__(self, addr, client_id, timeout=30.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id, clean=True, keepalive=0))
        ack = b""
        while len(ack) < 4:
            chunk = self.sock.recv(4 - len(ack))
            if not chunk:
                raise RuntimeError(f"{client_id}: connection closed before CONNACK")
            ack += chunk
        if ack[0] >> 4 != CONNACK or ack[3] != 0:
            raise RuntimeError(f"{client_id}: CONNACK {ack.hex()}")
        self.sock.setblocking(False)

    def exchange(self, out, done, timeout):
        """Writes out while reading; done(chunk) gets every received chunk and returns True when
        nothing more is awaited. Raises RuntimeError on a timeout or a closed connection."""
        view, sent = memoryview(out), 0
        poller = select.poll()
        deadline = time.monotonic() + timeout
        while True:
            poller.register(self.sock, select.POLLIN | (select.POLLOUT if sent < len(out) else 0))
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timed out after {timeout:g} s ({sent} of {len(out)} bytes written)")
            for _, ev in poller.poll(min(left, 1.0) * 1000):
                if ev & select.POLLOUT:
                    try:
                        sent += self.sock.send(view[sent:sent + (1 << 20)])
                    except BlockingIOError:
                        pass
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        chunk = self.sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise RuntimeError("the broker closed the connection")
                    if done(chunk) and sent == len(out):
                        return

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class PacketCounter:
    """done() callback for exchange(): counts packets of one type, checks SUBACK return codes."""

    def __init__(self, ptype, want):
        self.ptype, self.want, self.seen, self.buf = ptype, want, 0, b""

    def __call__(self, chunk):
        self.buf += chunk
        end = 0
        for first, body, end in split_packets(self.buf):
            if first >> 4 == self.ptype:
                self.seen += 1
                if self.ptype == SUBACK and 0x80 in body[2:]:
                    raise RuntimeError("a filter was refused (SUBACK 0x80)")
        self.buf = self.buf[end:]
        return self.seen >= self.want


def mixed_filter(i):
    """Filter i of a mixed set: exact, single-level wildcard in the middle, multi-level at the end,
    single-level at the root. None matches bench/..., but matching bench/t walks the root '+'."""
    kind = i % 4
    if kind == 0:
        return f"f/{i}/x"
    if kind == 1:
        return f"f/+/{i}"
    if kind == 2:
        return f"f/{i}/#"
    return f"+/g{i}/y"


def hold_filters(addr, n, prefix="curves-f", timeout=600.0):
    """Subscribes n mixed filters over ceil(n / FILTERS_PER_CONN) connections, every SUBACK awaited.
    Returns the open connections (the subscriptions live as long as they do)."""
    conns = []
    try:
        for c in range(0, n, FILTERS_PER_CONN):
            conn = Conn(addr, f"{prefix}{c // FILTERS_PER_CONN}")
            conns.append(conn)
            last = min(n, c + FILTERS_PER_CONN)
            packets = [subscribe_packet(1 + (k // FILTERS_PER_PACKET) % 65535,
                                        [(mixed_filter(j), 0) for j in range(k, min(last, k + FILTERS_PER_PACKET))])
                       for k in range(c, last, FILTERS_PER_PACKET)]
            conn.exchange(b"".join(packets), PacketCounter(SUBACK, len(packets)), timeout)
    except BaseException:
        for conn in conns:
            conn.close()
        raise
    return conns


def retained_topic(i):
    return f"ret/{i:07d}"


def store_retained(addr, n, timeout=600.0):
    """Publishes n retained QoS 0 messages (ret/0000000 ...), then a QoS 1 message on another
    topic whose PUBACK says the broker has read them all."""
    conn = Conn(addr, "curves-retain-pub")
    try:
        out = b"".join(publish_packet(retained_topic(i), RETAINED_PAYLOAD, retain=True) for i in range(n))
        out += publish_packet("curves/barrier", b"x", qos=1, pid=1)
        conn.exchange(out, PacketCounter(PUBACK, 1), timeout)
    finally:
        conn.close()


def timed_wildcard_subscribe(addr, n, client_id, timeout):
    """SUBSCRIBE ret/# and the time until the n retained messages have arrived (the SUBACK and n
    deliveries of one size, counted in bytes), then checked packet by packet. Returns a dict."""
    delivery = len(publish_packet(retained_topic(0), RETAINED_PAYLOAD, retain=True))
    want = 5 + n * delivery  # SUBACK (one return code) + n deliveries
    conn = Conn(addr, client_id)
    chunks, got = [], [0]

    def done(chunk):
        chunks.append(chunk)
        got[0] += len(chunk)
        return got[0] >= want

    cpu0, t0 = time.process_time(), time.monotonic()
    try:
        conn.exchange(subscribe_packet(1, [("ret/#", 0)]), done, timeout)
        elapsed = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        error = None
    except RuntimeError as e:
        elapsed, cpu, error = None, time.process_time() - cpu0, str(e)
    finally:
        conn.close()
    topics, subacks, data = set(), 0, b"".join(chunks)
    for first, body, _ in split_packets(data):
        if first >> 4 == SUBACK:
            subacks += 1
        elif first >> 4 == PUBLISH and first & 1:
            topics.add(bytes(body[2:2 + (body[0] << 8 | body[1])]))
    if error is None and (len(topics) != n or subacks != 1 or got[0] != want):
        error = f"{len(topics)} distinct retained topics of {n}, {subacks} SUBACK, {got[0]} of {want} bytes"
    return {"seconds": elapsed, "client_cpu_s": cpu, "received": len(topics), "error": error}


def offline_sessions(addr, n, prefix="fill-", timeout=30.0):
    """n persistent sessions, like store-fill's: client PREFIX<i> (clean session 0) subscribes to
    fill/<i> at QoS 1 and disconnects. One connection at a time, CONNECT + SUBSCRIBE +
    DISCONNECT in one write; the broker's close ends each. Source addresses 127.0.0.2, .3, ...
    change every 20,000 connections (one address has about 28,000 ephemeral ports)."""
    host = addr[0]
    for i in range(n):
        src = (f"127.0.0.{2 + i // 20000}", 0) if host.startswith("127.") else None
        sock = socket.create_connection(addr, timeout=timeout, source_address=src)
        try:
            sock.sendall(connect_packet(f"{prefix}{i}", clean=False, keepalive=0)
                         + subscribe_packet(1, [(f"fill/{i}", 1)]) + bytes([0xE0, 0]))
            got = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
            # CONNACK (4 bytes, return code 0) then SUBACK granting QoS 1 (5 bytes).
            if len(got) < 9 or got[3] != 0 or got[4] >> 4 != SUBACK or got[8] != 1:
                raise RuntimeError(f"session {prefix}{i}: unexpected reply {got[:16].hex()}")
        finally:
            sock.close()


def queue_messages(addr, sessions, m, payload=64, timeout=600.0):
    """m QoS 1 messages to fill/<k mod sessions>, k = 0 .. m-1, every PUBACK awaited: each one is
    queued for its offline session."""
    conn = Conn(addr, "curves-queue-pub")
    try:
        body = b"q" * payload
        out = b"".join(publish_packet(f"fill/{k % sessions}", body, qos=1, pid=1 + k % 65535)
                       for k in range(m))
        conn.exchange(out, PacketCounter(PUBACK, m), timeout)
    finally:
        conn.close()
