# SPDX-License-Identifier: Apache-2.0
"""mqtt-chaos faults: the schedule and what each fault does.

A schedule is [(at_seconds, fault, params)], from `--faults a,b --every 10s` (fault k at
(k+1)*every, cycling through the list, while before --duration) or from a file of lines
`AT FAULT [key=value ...]` (`#` comments; AT in seconds or with s/ms/m). Faults run one after
another on the main thread; one that is late (the previous one lasted longer) starts at once.

Every fault returns a record (dict): fault, target, at (s from the start), took (s), restored
(s from the start: the node back, the partition healed, the moves done), converge_s (from
`restored` until probes from every node reached every other node; None: not within the
timeout), ok, notes. After each fault the main loop also checks for duplicate sessions.
"""

import time

from chaos_cluster import Refused
from chaos_clients import concurrent_connects

FAULTS = ("kill", "partition", "move", "concurrent", "drain")
NEEDS_PROCESSES = ("kill", "partition", "drain")


def parse_duration(text):
    text = str(text).strip()
    for suffix, mult in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix) and text[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(text[:-len(suffix)]) * mult
    return float(text)


def schedule_from_list(faults, every, duration):
    names = [f.strip() for f in faults.split(",") if f.strip()]
    for f in names:
        if f not in FAULTS:
            raise ValueError("unknown fault %r (known: %s)" % (f, ", ".join(FAULTS)))
    out, k = [], 0
    while names and (k + 1) * every < duration:
        out.append(((k + 1) * every, names[k % len(names)], {}))
        k += 1
    return out


def schedule_from_file(path):
    out = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if len(words) < 2 or words[1] not in FAULTS:
                raise ValueError("%s:%d: expected `AT FAULT [key=value ...]` with FAULT one of "
                                 "%s" % (path, number, ", ".join(FAULTS)))
            params = dict(w.split("=", 1) for w in words[2:] if "=" in w)
            out.append((parse_duration(words[0]), words[1], params))
    return sorted(out, key=lambda e: e[0])


def refusals(schedule, cluster):
    """Lines explaining faults this cluster cannot do (empty: all fine)."""
    lines = []
    for _at, fault, _params in schedule:
        if fault in NEEDS_PROCESSES and not cluster.controls_processes:
            lines.append("fault %r needs process control (SIGKILL, namespaces, restart): not "
                         "possible on an existing cluster reached with --nodes" % fault)
        elif fault == "partition" and not cluster.partitions:
            lines.append("fault 'partition' needs the nodes in network namespaces: run as root "
                         "and without --netns no")
        elif fault in ("move", "concurrent") and cluster.size() < 2:
            lines.append("fault %r needs at least 2 nodes" % fault)
    return sorted(set(lines))


class FaultRunner:
    """Runs faults against `run` (the Run object of mqtt-chaos: cluster, clients, probes,
    rng, options, log, t0)."""

    def __init__(self, run):
        self.run = run
        self.drain_available = None

    def _node(self, params, exclude=()):
        if "node" in params:
            return int(params["node"])
        choices = [i for i in range(self.run.cluster.size()) if i not in exclude]
        return self.run.rng.choice(choices)

    def execute(self, at, fault, params):
        run = self.run
        t_start = time.monotonic()
        rec = {"fault": fault, "at": round(t_start - run.t0, 2), "scheduled": at,
               "target": None, "ok": True, "notes": "", "converge_s": None, "restored": None}
        try:
            getattr(self, "_" + fault)(rec, params)
        except Refused as e:
            rec.update(ok=False, notes="refused: %s" % e)
        rec["took"] = round(time.monotonic() - t_start, 2)
        if rec.get("skipped"):
            return rec
        restored = rec.pop("_restored", time.time())
        rec["restored"] = round(restored - run.t0_wall, 2)
        rec["converge_s"] = run.probes.converge(restored, run.opts.converge_timeout)
        if rec["converge_s"] is None:
            rec["notes"] += " not converged within %.0fs" % run.opts.converge_timeout
        rec["duplicate_sessions"] = run.check_duplicate_sessions("after %s" % fault)
        return rec

    # -- the faults ---------------------------------------------------------------------
    def _kill(self, rec, params):
        """SIGKILL node i, keep it down `down` seconds, restart it on the same data dir. Its
        clients reconnect to it (the same node) once it is back: their sessions are there."""
        cluster, run = self.run.cluster, self.run
        i = self._node(params)
        rec["target"] = cluster.names[i]
        down = float(params.get("down", run.opts.hold))
        run.log("fault kill: SIGKILL %s, down %.1fs" % (cluster.names[i], down))
        cluster.kill(i)
        time.sleep(down)  # the outage itself
        cluster.restart(i)
        rec["_restored"] = time.time()
        rec["notes"] = "down %.1fs" % down

    def _partition(self, rec, params):
        """Node i cut off from all other nodes (its clients still reach it) for `hold` s."""
        cluster, run = self.run.cluster, self.run
        i = self._node(params)
        rec["target"] = cluster.names[i]
        hold = float(params.get("hold", run.opts.hold))
        run.log("fault partition: %s cut off from the other nodes for %.1fs"
                % (cluster.names[i], hold))
        cluster.partition(i)
        time.sleep(hold)  # the partition itself
        seen = cluster.mqttctl_json(i, "members")  # what the cut-off node thinks of the others
        cluster.heal(i)
        rec["_restored"] = time.time()
        states = sorted({m["state"] for m in (seen or {}).get("members", [])
                         if m.get("nodeId") != cluster.names[i]})
        rec["notes"] = "cut %.1fs; it saw the others %s" % (hold, "/".join(states) or "?")

    def _move(self, rec, params):
        """`count` subscribers (default half; or sub=K,K: those) leave their node (clean
        DISCONNECT or a dropped TCP connection, alternately) and reconnect with the same client
        id to another node (random, or to=N): Session Present must be 1 [MQTT-3.2.2-2]."""
        run = self.run
        subs = list(run.subscribers)
        if "sub" in params:  # sub=K[,K...]: those subscribers (by index)
            chosen = [subs[int(k)] for k in params["sub"].split(",")]
        else:
            count = int(params.get("count", max(1, len(subs) // 2)))
            chosen = run.rng.sample(subs, min(count, len(subs)))
        moves = []
        for k, sub in enumerate(chosen):
            if "to" in params and int(params["to"]) != sub.target:
                to = int(params["to"])
            else:
                to = self._node({}, exclude=(sub.target,))
            moves.append((sub, sub.target, to))
            sub.request_move(to, abrupt=bool(k % 2))
        lines = []
        for sub, frm, to in moves:
            done = sub.move_done.wait(60)
            sp = sub.moves[-1][2] if done and sub.moves else None
            lines.append("%s %d->%d SP=%s" % (sub.client_id.rsplit("-", 1)[-1], frm, to, sp))
            if sp != 1:
                rec["ok"] = False
        rec["target"] = "%d subscribers" % len(moves)
        rec["notes"] = ", ".join(lines)
        rec["_restored"] = time.time()
        run.log("fault move: %s" % rec["notes"])

    def _concurrent(self, rec, params):
        """K CONNECTs with one new client id spread over the nodes at once: exactly one may
        stay connected after settling (invariant 1)."""
        run = self.run
        k = int(params.get("k", run.opts.concurrent))
        cid = "chaos-%s-race%d" % (run.run_id, len(run.fault_records))
        # While the survivor is connected: mqttctl sessions must list the id connected once.
        result = concurrent_connects(run.cluster, cid, k, while_open=lambda: run.
                                     check_duplicate_sessions("concurrent connects"))
        rec["target"] = "%d CONNECTs" % k
        rec["notes"] = "accepted %d, connected after settling %d" % (result["accepted"],
                                                                     result["alive"])
        rec["concurrent"] = result
        if result["alive"] != 1:
            rec["ok"] = False
        if result["alive"] > 1 and not result["cluster_side"]:  # else recorded already
            run.duplicate_sessions.append({"client_id": cid, "when": "concurrent connects",
                                           "nodes": result["alive_nodes"]})
        rec["_restored"] = time.time()
        run.log("fault concurrent: %s" % rec["notes"])

    def _drain(self, rec, params):
        """`mqttctl --server NODE drain`: the node hands its sessions to others and exits 0;
        its clients reconnect elsewhere (sessions follow); then the node starts again as a
        fresh member (new data dir) so that the cluster keeps its size."""
        run, cluster = self.run, self.run.cluster
        if self.drain_available is None:
            self.drain_available = cluster.drain_available()
        if not self.drain_available:
            line = "drain not available in this mqttctl (%s): fault skipped" % cluster.mqttctl_bin
            run.log(line)
            rec.update(skipped=True, notes=line)
            return
        i = self._node(params)
        rec["target"] = cluster.names[i]
        others = [j for j in range(cluster.size()) if j != i]
        for client in run.publishers + run.subscribers:
            if client.target == i:  # where it reconnects once the drain disconnects it
                client.target = run.rng.choice(others)
        ok, message = cluster.drain(i)
        rec["notes"] = message
        if not ok:
            rec["ok"] = False
        cluster.replace_fresh(i)
        rec["_restored"] = time.time()
        run.log("fault drain: %s: %s; started again as %s" % (rec["target"], message,
                                                               cluster.names[i]))
