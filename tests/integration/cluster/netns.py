# SPDX-License-Identifier: Apache-2.0
"""Network partitions for cluster tests (issue 11): real mqttd nodes in Linux network namespaces.

Topology(n) builds, with iproute2 (root only):

    root namespace                 hub namespace (<prefix><pid>-hub)        node namespaces
    <prefix><pid>r 10.A.B.254/24 === up0 --+                                 (<prefix><pid>-n<i>)
                                           br0 (bridge) -- n0 ====== eth0 10.A.B.1/24  node 0
                                           |            -- n1 ====== eth0 10.A.B.2/24  node 1
                                           |            -- ...

`===` is a veth pair. Every namespace has its loopback up. The only thing added to the root
namespace is the veth <prefix><pid>r with an address (so a connected /24 route): no sysctl, no
default route, no firewall rule is touched. The subnet 10.A.B.0/24 (A in 240..254) is one that
no address or route of the root namespace overlaps, chosen under a file lock so that parallel
runs get different ones; names carry the test's pid so that they never collide either.

  isolate(i) / heal(i): node i's link on the hub (n<i>) down / up: node i reaches nobody and
      nobody (the test included) reaches it; its own address still works from inside it.
  cut(i, j) / uncut(i, j): nodes i and j cannot reach each other, everyone else is unaffected.
      Inside the two node namespaces only: by default each gets a permanent neighbour entry for
      the other pointing at a MAC nobody has (packets silently lost, like a broken link); or
      a blackhole / prohibit / unreachable route to the peer's /32 (an immediate local error).
  node(i, name, seeds): a harness_cluster.ClusterNode that runs `ip netns exec <ns> mqttd ...`
      with MQTT on addr(i):1883 and the cluster on addr(i):7000 (advertised as such).
  run_in(i, cmd): a command inside node i's namespace (e.g. mqttctl against an isolated node).

cleanup() kills the nodes made by node() and whatever else still runs in the namespaces
(processes this harness started), removes the nodes' directories, and deletes the namespaces and
the root veth. It runs from __exit__, at exit, and on SIGTERM / SIGHUP (then the process dies of
that signal); at start, leftovers of runs whose pid no longer exists (a SIGKILLed test: its mqttd
processes, namespaces, root veth) are deleted.
"""

import atexit
import fcntl
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

from harness_cluster import ClusterNode

MQTT_PORT = 1883
CLUSTER_PORT = 7000
RAFT_PORT = 7001
DEFAULT_PREFIX = "mqpt"
LOCK_FILE = "/run/lock/mqtt-test-netns.lock"
NOWHERE_MAC = "02:00:00:00:00:01"  # locally administered, on no interface


def start_all(nodes):
    """Starts `nodes` at once (a node may wait, bounded, for its seeds before it says ready);
    raises the first start failure, in the caller's thread."""
    errors = []

    def start(node):
        try:
            node.start()
        except BaseException as e:  # reported below, in the caller's thread
            errors.append(e)
    threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


class NetnsUnavailable(RuntimeError):
    pass


def ip(*args, check=True):
    out = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if check and out.returncode != 0:
        raise RuntimeError("ip %s: exit %d: %s" % (" ".join(args), out.returncode,
                                                  out.stderr.strip()))
    return out


def require_netns():
    """Raises NetnsUnavailable with the reason when this process cannot build namespaces."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("the partition test needs root (ip netns, veth, bridge); "
                               "running as uid %d" % os.geteuid())
    try:
        out = ip("netns", "list", check=False)
    except FileNotFoundError:
        raise NetnsUnavailable("`ip` (iproute2) is not installed")
    if out.returncode != 0:
        raise NetnsUnavailable("`ip netns list` failed: %s" % out.stderr.strip())


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _netns_names():
    out = ip("netns", "list", check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def _kill_and_delete_netns(name):
    """SIGKILLs what runs in namespace `name` (only this harness's namespaces get here) and
    deletes it; its veths go with it."""
    pids = ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    ip("netns", "del", name, check=False)


def delete_stale(prefix=DEFAULT_PREFIX):
    """Deletes namespaces and root veths of earlier runs whose process no longer exists."""
    ns_re = re.compile(r"^%s(\d+)-(hub|n\d+)$" % re.escape(prefix))
    for name in _netns_names():
        m = ns_re.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _kill_and_delete_netns(name)
    link_re = re.compile(r"^%s(\d+)r$" % re.escape(prefix))
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = link_re.match(name)
        if m and not _pid_alive(int(m.group(1))):
            ip("link", "del", name, check=False)


def _root_networks():
    """Every IPv4 network the root namespace has an address or a route in."""
    nets = []
    for line in ip("-o", "-4", "addr", "show", check=False).stdout.splitlines():
        m = re.search(r"\binet (\S+)", line)
        if m:
            nets.append(ipaddress.ip_interface(m.group(1)).network)
    for line in ip("-4", "route", "show", "table", "all", check=False).stdout.splitlines():
        words = line.split()
        dest = words[0] if words else ""
        if dest in ("broadcast", "local", "unicast", "multicast", "anycast") and len(words) > 1:
            dest = words[1]
        if dest == "default" or not dest:
            continue
        try:
            nets.append(ipaddress.ip_network(dest, strict=False))
        except ValueError:
            pass
    return nets


def _pick_subnet(pid):
    used = _root_networks()
    candidates = [ipaddress.ip_network("10.%d.%d.0/24" % (a, b))
                  for a in range(240, 255) for b in range(256)]
    start = pid % len(candidates)
    for k in range(len(candidates)):
        net = candidates[(start + k) % len(candidates)]
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.240-254.x.0/24 subnet for the test topology")


class Topology:
    def __init__(self, n, prefix=DEFAULT_PREFIX):
        require_netns()
        if len(prefix) > 4:
            raise ValueError("prefix of at most 4 characters (interface names are <= 15)")
        self.n = n
        self.prefix = prefix
        self.pid = os.getpid()
        self.tag = "%s%d" % (prefix, self.pid)
        self.hub = self.tag + "-hub"
        self.namespaces = ["%s-n%d" % (self.tag, i) for i in range(n)]
        self.root_link = self.tag + "r"
        self.subnet = None
        self._made = []  # namespaces created, for cleanup
        self._root_link_made = False
        self._cuts = set()
        self._nodes = []
        self._closed = False
        self._prev_handlers = {}
        atexit.register(self.cleanup)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._prev_handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: atexit / __exit__ only
                pass
        try:
            delete_stale(prefix)
            self._build()
        except BaseException:
            self.cleanup()
            raise

    # -- construction ------------------------------------------------------------------
    def _add_netns(self, name):
        ip("netns", "add", name)
        self._made.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _build(self):
        self._add_netns(self.hub)
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
        with open(LOCK_FILE, "a") as lock:
            # Subnet choice and the root address together, so parallel runs see each other's.
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.subnet = _pick_subnet(self.pid)
            ip("link", "add", self.root_link, "type", "veth", "peer", "name", "up0",
               "netns", self.hub)
            self._root_link_made = True
            ip("addr", "add", "%s/24" % self.root_addr, "dev", self.root_link)
            ip("link", "set", self.root_link, "up")
        ip("-n", self.hub, "link", "set", "up0", "master", "br0", "up")
        for i, ns in enumerate(self.namespaces):
            self._add_netns(ns)
            ip("-n", self.hub, "link", "add", "n%d" % i, "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            ip("-n", self.hub, "link", "set", "n%d" % i, "master", "br0", "up")
            ip("-n", ns, "addr", "add", "%s/24" % self.addr(i), "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    # -- addresses ---------------------------------------------------------------------
    def addr(self, i):
        return str(self.subnet.network_address + 1 + i)

    @property
    def root_addr(self):
        return str(self.subnet.network_address + 254)

    def mqtt_address(self, i):
        return "%s:%d" % (self.addr(i), MQTT_PORT)

    def cluster_address(self, i):
        return "%s:%d" % (self.addr(i), CLUSTER_PORT)

    # -- partitions --------------------------------------------------------------------
    def isolate(self, i):
        ip("-n", self.hub, "link", "set", "n%d" % i, "down")

    def heal(self, i):
        ip("-n", self.hub, "link", "set", "n%d" % i, "up")

    def cut(self, i, j, kind="drop"):
        """i and j cannot reach each other; everyone else still reaches both. Namespace-local.
        kind: "drop" (default; packets silently lost, as on a broken link: each of the two
        holds a permanent neighbour entry for the other with a MAC nobody has, so TCP just
        retransmits into the void), or a route of that type to the peer's /32: "blackhole"
        (connect/send fail at once with EINVAL), "prohibit" (EACCES), "unreachable"."""
        assert kind in ("drop", "blackhole", "prohibit", "unreachable")
        for a, b in ((i, j), (j, i)):
            if kind == "drop":
                ip("-n", self.namespaces[a], "neigh", "replace", self.addr(b), "lladdr",
                   NOWHERE_MAC, "dev", "eth0", "nud", "permanent")
            else:
                ip("-n", self.namespaces[a], "route", "add", kind, "%s/32" % self.addr(b))
            self._cuts.add((a, b, kind))

    def uncut(self, i, j):
        for a, b, kind in sorted(self._cuts):
            if {a, b} == {i, j}:
                if kind == "drop":  # forgotten: ARP finds the real one again
                    ip("-n", self.namespaces[a], "neigh", "del", self.addr(b), "dev", "eth0")
                else:
                    ip("-n", self.namespaces[a], "route", "del", kind, "%s/32" % self.addr(b))
                self._cuts.discard((a, b, kind))

    # -- processes ---------------------------------------------------------------------
    def node(self, i, name, seeds=(), extra_args=()):
        """A ClusterNode (not started) inside namespace i: MQTT on addr(i):1883, cluster on
        addr(i):7000, advertised as addr(i):7000, registry Raft on addr(i):7001, joining `seeds`
        (cluster addresses)."""
        node = ClusterNode(name, seeds=seeds, host=self.addr(i), port=MQTT_PORT,
                           cluster_port=CLUSTER_PORT, raft_port=RAFT_PORT,
                           netns=self.namespaces[i],
                           extra_args=["--cluster-advertise", self.cluster_address(i)]
                           + list(extra_args))
        self._nodes.append(node)  # cleanup() cleans it up too
        return node

    def exec_prefix(self, i):
        return ["ip", "netns", "exec", self.namespaces[i]]

    def run_in(self, i, cmd, timeout=30):
        return subprocess.run(self.exec_prefix(i) + list(cmd), capture_output=True, text=True,
                              timeout=timeout)

    def can_connect(self, i, j, port=CLUSTER_PORT, timeout=1.0):
        """Whether a TCP connection from node i's namespace (i None: the root namespace) to
        node j's address and port is answered (accepted or refused) within timeout."""
        code = ("import socket,sys\n"
                "s = socket.socket(); s.settimeout(%r)\n"
                "try:\n    s.connect((%r, %d))\n"
                "except ConnectionRefusedError:\n    pass\n"
                "except OSError:\n    sys.exit(1)\n" % (timeout, self.addr(j), port))
        cmd = [sys.executable, "-c", code]
        if i is None:
            out = subprocess.run(cmd, capture_output=True, timeout=timeout + 20)
        else:
            out = self.run_in(i, cmd, timeout=timeout + 20)
        return out.returncode == 0

    # -- teardown ----------------------------------------------------------------------
    def cleanup(self, _from_signal=False):
        """Idempotent. Kills the nodes made by node() (and anything else still running in the
        namespaces), removes their directories, deletes the namespaces and the root veth."""
        if self._closed:
            return
        self._closed = True
        for node in self._nodes:
            if _from_signal:  # no Popen.wait() here: the interrupted code may be inside one
                if node.proc is not None and node.proc.poll() is None:
                    try:
                        os.kill(node.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                shutil.rmtree(node.root, ignore_errors=True)
            else:
                node.cleanup()
        for name in reversed(self._made):  # node namespaces first, the hub last
            _kill_and_delete_netns(name)
        self._made = []
        if self._root_link_made and ip("link", "show", self.root_link, check=False).returncode == 0:
            ip("link", "del", self.root_link, check=False)
        self._root_link_made = False
        for sig, prev in self._prev_handlers.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, prev)
        try:
            atexit.unregister(self.cleanup)
        except Exception:
            pass

    def _on_signal(self, signum, frame):
        """SIGTERM / SIGHUP (a ctest timeout, a CI job cancelled): clean up, then die of the
        signal as if this handler were not there (or call the handler that was)."""
        prev = self._prev_handlers.get(signum)
        self.cleanup(_from_signal=True)
        if callable(prev):
            prev(signum, frame)
            return
        if prev == signal.SIG_IGN:
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False
