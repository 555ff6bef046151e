# SPDX-License-Identifier: Apache-2.0
"""mqtt-chaos clients (paho-mqtt 1.6): numbered publishers, persistent subscribers, the probe
mesh that times convergence, and K concurrent CONNECTs with one client id.

Every paho client lives on one thread of its own (a `Session` thread drives `client.loop()`);
other threads only set requests (move_to, halt, probe round) that the owning thread acts on,
and read the records, which are appended under `lock`.

Persistent sessions: 3.1.1 Clean Session 0, or 5.0 Clean Start 0 with Session Expiry Interval
3600 [MQTT-3.1.2-23]. One paho Client object per client id for the whole run, so its session
state (outgoing in-flight messages, inbound QoS 2 ids awaiting PUBREL) survives reconnects and
moves: paho re-sends unacknowledged PUBLISH / PUBREL after a reconnect [MQTT-4.4.0-1] and
delivers an inbound QoS 2 message once, at PUBREL.
"""

import socket
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import chaos_cluster  # noqa: F401 (puts the tests' harness on sys.path)

assert chaos_cluster.TESTS_CLUSTER  # harness, harness5 (concurrent_connects) come from there

KEEPALIVE_S = 5
CONNACK_WAIT_S = 5.0
RETRY_S = 0.2


def _session_props():
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    return props


class Session(threading.Thread):
    """One persistent-session paho client bound to node `target` of `cluster`. Reconnects to
    its target after any loss (to the SAME node: a node that is down is waited for), and to
    another node when asked (move_to)."""

    def __init__(self, cluster, client_id, version, target, log):
        super().__init__(daemon=True, name=client_id)
        self.cluster, self.client_id = cluster, client_id
        self.version, self.target = version, target
        self.log = log
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.move_to = None  # (node, abrupt), set by another thread
        self.move_done = threading.Event()
        self.moves = []  # (from, to, session_present, seconds)
        self.connects = 0
        self.sessions_lost = []  # (time, node) of a Session Present 0 where 1 was due
        self.connected = False
        self._connack = None
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        if version == 5:
            self.client = mqtt.Client(client_id=client_id, protocol=proto)
        else:
            self.client = mqtt.Client(client_id=client_id, clean_session=False, protocol=proto)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    # -- paho callbacks (this thread) -------------------------------------------------
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self._connack = (int(flags.get("session present", 0)), int(rc if self.version == 4
                                                                 else rc.value))

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.connected = False

    # -- connecting -------------------------------------------------------------------
    def _try_connect(self):
        """One attempt at the target: (session_present, rc) or None (refused, down, timeout)."""
        host, port = self.cluster.address(self.target)
        self._connack = None
        try:
            if self.version == 5:
                self.client.connect(host, port, KEEPALIVE_S, clean_start=False,
                                    properties=_session_props())
            else:
                self.client.connect(host, port, KEEPALIVE_S)
        except (OSError, ValueError):
            return None
        deadline = time.monotonic() + CONNACK_WAIT_S
        while self._connack is None and time.monotonic() < deadline:
            if self.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        ack = self._connack
        if ack is None or ack[1] != 0:
            self._drop_socket()
            return None
        return ack

    def _drop_socket(self):
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.client.loop(0.01)  # paho notices the closed socket and resets its state

    def connect(self, first, deadline=None):
        """Connects to the target, retrying until it answers with CONNACK 0 (or halt)."""
        while not self.halt.is_set():
            ack = self._try_connect()
            if ack is not None:
                self.connects += 1
                self.connected = True
                self._after_connect(first, ack[0])
                return ack[0]
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(RETRY_S)  # back-off while the node is down or refuses (netsplit)
        return None

    def _after_connect(self, first, session_present):
        if not first and not session_present:
            with self.lock:
                self.sessions_lost.append((time.time(), self.target))
            self.log("%s: Session Present 0 on node %d where its session was due"
                     % (self.client_id, self.target))
            self.client._in_messages.clear()  # that session's inbound QoS 2 ids are gone
        if first or not session_present:
            self.on_new_session()

    def on_new_session(self):
        pass

    def _move(self):
        to, abrupt = self.move_to
        self.move_to = None
        old, t0 = self.target, time.monotonic()
        if abrupt:
            self._drop_socket()
        else:
            self.client.disconnect()
            for _ in range(20):
                if self.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
        self.connected = False
        self.target = to
        sp = self.connect(first=False)
        with self.lock:
            self.moves.append((old, to, sp, time.monotonic() - t0))
        self.move_done.set()

    def request_move(self, to, abrupt):
        self.move_done.clear()
        self.move_to = (to, abrupt)

    def step(self):
        """Called between loop() calls while connected."""

    def run(self):
        try:
            self.connect(first=True)
            while not self.halt.is_set():
                if self.move_to is not None:
                    self._move()
                    continue
                if self.client.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                    self.connected = False
                    self.connect(first=False)
                    continue
                self.step()
        except Exception as e:  # noqa: BLE001 (reported; the run then fails)
            self.log("%s: thread error %r" % (self.client_id, e))
            self.error = e
        finally:
            try:
                self.client.disconnect()
                self.client.loop(0.05)
            except Exception:  # noqa: BLE001
                pass

    error = None


class Publisher(Session):
    """Publishes seq 0..count-1 to its own topic at its QoS, at most `rate` per second and
    `window` unacknowledged; acked[seq] = when PUBACK (QoS 1) / PUBCOMP (QoS 2) came."""

    def __init__(self, cluster, name, version, target, topic, qos, rate, count, window, log):
        super().__init__(cluster, name, version, target, log)
        self.topic, self.qos, self.rate, self.count, self.window = topic, qos, rate, count, window
        self.sent = {}  # seq -> first send time
        self.acked = {}  # seq -> ack time
        self._mid_seq = {}
        self._next = 0
        self._due = None
        self.stop_publishing = threading.Event()
        self.client.max_inflight_messages_set(window)
        self.client.on_publish = self._on_publish

    def _on_publish(self, client, userdata, mid):
        seq = self._mid_seq.pop(mid, None)
        if seq is not None:
            with self.lock:
                self.acked[seq] = time.time()

    def unacked(self):
        return len(self._mid_seq)

    def finished(self):
        return (self._next >= self.count or self.stop_publishing.is_set()) and not self._mid_seq

    def step(self):
        now = time.monotonic()
        if self._due is None:
            self._due = now
        while (self.connected and now >= self._due and self._next < self.count
               and not self.stop_publishing.is_set() and len(self._mid_seq) < self.window):
            seq = self._next
            payload = ("%s %d %.6f" % (self.client_id, seq, time.time())).encode()
            info = self.client.publish(self.topic, payload, qos=self.qos)
            self._mid_seq[info.mid] = seq
            with self.lock:
                self.sent[seq] = time.time()
            self._next += 1
            self._due += 1.0 / self.rate
        if self._due < now - 1.0:  # do not burst to catch up after a long outage
            self._due = now - 1.0


class Subscriber(Session):
    """Persistent subscriber of `topic_filter` at QoS 2. got: [(publisher, seq, qos, dup,
    time, node)] in arrival order; sub_time: when its first SUBACK came (it counts messages
    from then on)."""

    def __init__(self, cluster, name, version, target, topic_filter, log):
        super().__init__(cluster, name, version, target, log)
        self.topic_filter = topic_filter
        self.got = []
        self.subscribed = threading.Event()
        self.sub_time = None
        self.resubscribes = []  # times of a SUBACK after a lost session
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def on_new_session(self):
        self.client.subscribe(self.topic_filter, qos=2)

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        code = getattr(granted[0], "value", granted[0]) if granted else 0x80
        if code >= 0x80:  # refused: nothing will match, every expected message would be lost
            self.error = RuntimeError("%s: SUBACK 0x%02x for %s" % (self.client_id, code,
                                                                    self.topic_filter))
            self.log(str(self.error))
            return
        if code != 2:
            self.log("%s: granted QoS %d, not 2" % (self.client_id, code))
        now = time.time()
        if self.sub_time is None:
            self.sub_time = now
        else:
            self.resubscribes.append(now)
        self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        try:
            pub, seq, _t = msg.payload.decode().split(" ")
            seq = int(seq)
        except ValueError:
            self.log("%s: unexpected payload %r on %s" % (self.client_id, msg.payload[:60],
                                                          msg.topic))
            return
        with self.lock:
            self.got.append((pub, seq, msg.qos, bool(msg.dup), time.time(), self.target))


class ProbeClient(Session):
    """Clean-session client on one node that publishes probes (QoS 0) of the current round and
    records the first arrival of each (round, from-node)."""

    def __init__(self, cluster, name, index, topic_prefix, log):
        super().__init__(cluster, name, 4, index, log)
        self.client = mqtt.Client(client_id=name, clean_session=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.index, self.prefix = index, topic_prefix
        self.round = None
        self.seen = {}  # (round, from) -> first arrival time
        self._last = 0.0

    def _after_connect(self, first, session_present):
        self.client.subscribe(self.prefix + "/#", qos=0)

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        try:
            key = (int(parts[-2]), int(parts[-1]))
        except (ValueError, IndexError):
            return
        with self.lock:
            self.seen.setdefault(key, time.time())

    def step(self):
        r = self.round
        now = time.monotonic()
        if r is not None and self.connected and now - self._last >= 0.2:
            self._last = now
            self.client.publish("%s/%d/%d" % (self.prefix, r, self.index), b"p", qos=0)


class ProbeMesh:
    """One ProbeClient per node. converge(round, timeout): seconds from `since` (wall time)
    until a probe published on every node reached the probe client of every other node."""

    def __init__(self, cluster, run_id, log):
        self.prefix = "chaos/%s/probe" % run_id
        self.clients = [ProbeClient(cluster, "chaos-%s-probe%d" % (run_id, i), i, self.prefix,
                                    log) for i in range(cluster.size())]
        self._round = 0

    def start(self):
        for c in self.clients:
            c.start()

    def converge(self, since, timeout, nodes=None):
        self._round += 1
        r = self._round
        nodes = list(range(len(self.clients))) if nodes is None else nodes
        for c in self.clients:
            c.round = r
        deadline = time.monotonic() + timeout
        result = None
        while time.monotonic() < deadline:
            last = self._last_arrival(r, nodes)
            if last is not None:
                result = max(0.0, last - since)
                break
            time.sleep(0.1)  # polling the probe threads' records
        for c in self.clients:
            c.round = None
        return result

    def _last_arrival(self, r, nodes):
        last = 0.0
        for j in nodes:
            with self.clients[j].lock:
                seen = dict(self.clients[j].seen)
            for i in nodes:
                if i == j:
                    continue
                t = seen.get((r, i))
                if t is None:
                    return None
                last = max(last, t)
        return last

    def stop(self):
        for c in self.clients:
            c.halt.set()
        for c in self.clients:
            if c.is_alive():
                c.join(5)


def concurrent_connects(cluster, client_id, k, settle_timeout=10.0, while_open=None):
    """K raw CONNECTs (3.1.1 and 5.0 alternating, Clean Start 1) with one client id, spread
    over the nodes, released together. After every CONNACK, waits until at most one connection
    is still open (or settle_timeout), then pings the open ones, then calls while_open() (the
    cluster-side check) before closing them. Returns a dict: accepted, alive (connections still
    answering PINGREQ), alive_nodes, refused (the first few other outcomes), cluster_side
    (what while_open returned)."""
    import harness  # noqa: E402 (tests/integration, on the path through chaos_cluster)
    import harness5  # noqa: E402
    clients, outcomes = [], [None] * k
    try:
        for i in range(k):
            host, port = cluster.address(i % cluster.size())
            try:
                clients.append(harness.RawClient(host, port, timeout=10))
            except OSError as e:
                clients.append(None)
                outcomes[i] = "connect: %r" % e
        barrier = threading.Barrier(k)

        def run(i):
            try:
                barrier.wait(10)
            except threading.BrokenBarrierError:
                pass
            c = clients[i]
            if c is None:
                return
            try:
                if i % 2:
                    c.send(harness5.connect5_packet(client_id, clean_start=True))
                else:
                    c.send(harness.connect_packet(client_id, clean=True))
                outcomes[i] = c.expect(harness.CONNACK, 10).body[1]
            except (harness.Closed, TimeoutError, OSError, AssertionError) as e:
                outcomes[i] = repr(e)
        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(k)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        accepted = [i for i in range(k) if outcomes[i] == 0]
        deadline = time.monotonic() + settle_timeout
        time.sleep(0.5)  # let the registry's order play out before judging
        while True:
            open_ = [i for i in accepted if not _closed(clients[i], harness)]
            if len(open_) <= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # polling sockets for the broker's close
        alive = []
        for i in open_:
            try:
                clients[i].ping(2.0)
                alive.append(i)
            except (harness.Closed, TimeoutError, OSError, AssertionError):
                pass
        cluster_side = while_open() if while_open else None
        return {"accepted": len(accepted), "alive": len(alive), "alive_nodes":
                [i % cluster.size() for i in alive],
                "refused": [o for o in outcomes if o != 0][:5], "cluster_side": cluster_side}
    finally:
        for c in clients:
            if c is not None:
                c.close()


def _closed(client, harness):
    """Reads what is pending on a raw client without blocking; True once the broker closed it
    (a 5.0 DISCONNECT 0x8E comes first)."""
    while True:
        try:
            client.recv(0.01)
        except TimeoutError:
            return False
        except (harness.Closed, OSError):
            return True


def log_to_stderr(line):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), line))
    sys.stderr.flush()

