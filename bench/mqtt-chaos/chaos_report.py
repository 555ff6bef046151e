# SPDX-License-Identifier: Apache-2.0
"""mqtt-chaos: checking what the subscribers got against what the publishers had acknowledged,
and the report (a human table on stdout, a JSON object with --json).

Per subscriber, `expected` = every (publisher, seq) that the publisher had acknowledged
(PUBACK for QoS 1, PUBCOMP for QoS 2) and whose topic matches the subscriber's filter. The
subscribers subscribe (and their routes reach every node) before the first publish, and keep
their session for the whole run (a lost session is reported as such), so every one counts.
- lost: expected and never delivered (fails the run);
- QoS 2 duplicates: a (publisher, seq) of a QoS 2 publisher delivered twice (fails);
- QoS 1 duplicates: counted (allowed by QoS 1 [MQTT-4.3.2]);
- order breaks: in the first deliveries of one publisher's messages to one subscriber, a seq
  lower than the one before [MQTT-4.6.0-6] (counted; fails only with --fail-on-order);
- delivered but not acknowledged: the publisher's PUBACK/PUBCOMP had not come (not an error).
"""

import json

import paho.mqtt.client as mqtt


def analyse(publishers, subscribers, self_test_drop=False, t0_wall=0.0):
    pubs = {p.client_id: p for p in publishers}
    per_sub, per_pub_order = [], {p.client_id: 0 for p in publishers}
    dropped = None
    for k, sub in enumerate(subscribers):
        with sub.lock:
            got = list(sub.got)
        matching = [p for p in publishers if mqtt.topic_matches_sub(sub.topic_filter, p.topic)]
        expected = set()
        for p in matching:
            with p.lock:
                expected |= {(p.client_id, seq) for seq in p.acked}
        if self_test_drop and k == 0:
            got, dropped = _drop_one(got, expected)
        per_sub.append(_check_one(sub, got, expected, pubs, per_pub_order, t0_wall))
    return per_sub, per_pub_order, dropped


def _drop_one(got, expected):
    """--self-test-drop: the subscriber side throws away every copy of the first delivered
    message that was acknowledged, as if it had never arrived."""
    for pub, seq, *_rest in got:
        if (pub, seq) in expected:
            return [g for g in got if (g[0], g[1]) != (pub, seq)], "%s#%d" % (pub, seq)
    return got, None


def _check_one(sub, got, expected, pubs, per_pub_order, t0_wall):
    counts, firsts = {}, {}
    for pub, seq, _qos, _dup, _t, _node in got:
        key = (pub, seq)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            firsts.setdefault(pub, []).append(seq)
    lost = sorted(expected - set(counts))
    dup2 = sorted(k for k, c in counts.items() if c > 1 and k[0] in pubs and pubs[k[0]].qos == 2)
    dup1 = sum(c - 1 for k, c in counts.items() if c > 1 and k[0] in pubs and pubs[k[0]].qos == 1)
    breaks = 0
    for pub, seqs in firsts.items():
        n = sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
        breaks += n
        if pub in per_pub_order:
            per_pub_order[pub] += n
    rel = lambda t: None if t is None else round(t - t0_wall, 3)
    lost_info = []
    for pub, seq in lost[:20]:
        p = pubs[pub]
        lost_info.append({"publisher": pub, "seq": seq, "qos": p.qos,
                          "sent": rel(p.sent.get(seq)), "acked": rel(p.acked.get(seq))})
    dup_keys = set(dup2[:5]) | set(sorted(k for k, c in counts.items() if c > 1)[:5])
    dup_detail = [{"message": "%s#%d" % (pub, seq), "qos": qos, "sent":
                   rel(pubs[pub].sent.get(seq)) if pub in pubs else None,
                   "delivered_at": rel(t), "dup_flag": dup, "node": node}
                  for pub, seq, qos, dup, t, node in got if (pub, seq) in dup_keys]
    return {"client_id": sub.client_id, "version": "5.0" if sub.version == 5 else "3.1.1",
            "filter": sub.topic_filter, "node_now": sub.target, "expected": len(expected),
            "delivered": len(got), "distinct": len(counts), "lost": len(lost),
            "lost_first": lost_info, "qos2_duplicates": len(dup2),
            "qos2_duplicates_first": ["%s#%d" % k for k in dup2[:20]],
            "duplicates_detail": dup_detail,
            "qos1_duplicates": dup1, "order_breaks": breaks,
            "_lost_sent": [rel(pubs[pub].sent.get(seq)) for pub, seq in lost],
            "_dup2_sent": [rel(pubs[pub].sent.get(seq)) for pub, seq in dup2],
            "not_acknowledged": len(set(counts) - expected), "connects": sub.connects,
            "moves": len(sub.moves), "sessions_lost": len(sub.sessions_lost)}


def _after_fault(faults, t):
    """The last fault that had started when a message was sent (t: s after the first
    publish): "#k fault target", or "before any fault"."""
    last = None
    for k, f in enumerate(faults):
        if t is not None and f["at"] <= t:
            last = "#%d %s %s" % (k + 1, f["fault"], f["target"] or "")
    return (last or "before any fault").strip()


def _by_fault(faults, per_sub, key):
    counts = {}
    for s in per_sub:
        for t in s.pop(key):
            where = _after_fault(faults, t)
            counts[where] = counts.get(where, 0) + 1
    return counts


def summarise(run, per_sub, per_pub_order, dropped):
    pubs = run.publishers
    for s in per_sub:
        for lost in s["lost_first"]:
            lost["after_fault"] = _after_fault(run.fault_records, lost["sent"])
    lost_by_fault = _by_fault(run.fault_records, per_sub, "_lost_sent")
    dup2_by_fault = _by_fault(run.fault_records, per_sub, "_dup2_sent")
    acked = {q: sum(len(p.acked) for p in pubs if p.qos == q) for q in (1, 2)}
    sessions_lost = [(c.client_id, when, node) for c in pubs + run.subscribers
                     for when, node in c.sessions_lost]
    totals = {
        "published": sum(len(p.sent) for p in pubs),
        "acknowledged": acked[1] + acked[2], "acknowledged_qos1": acked[1],
        "acknowledged_qos2": acked[2],
        "unacknowledged_at_end": sum(p.unacked() for p in pubs),
        "expected_deliveries": sum(s["expected"] for s in per_sub),
        "delivered": sum(s["delivered"] for s in per_sub),
        "lost": sum(s["lost"] for s in per_sub),
        "qos2_duplicates": sum(s["qos2_duplicates"] for s in per_sub),
        "qos1_duplicates": sum(s["qos1_duplicates"] for s in per_sub),
        "order_breaks": sum(s["order_breaks"] for s in per_sub),
        "duplicate_sessions": len(run.duplicate_sessions),
        "sessions_lost": len(sessions_lost),
        "client_errors": len([c for c in pubs + run.subscribers if c.error]),
    }
    failures = []
    if totals["lost"]:
        failures.append("%d acknowledged messages lost" % totals["lost"])
    if totals["qos2_duplicates"]:
        failures.append("%d QoS 2 messages delivered more than once" % totals["qos2_duplicates"])
    if totals["duplicate_sessions"]:
        failures.append("%d duplicate sessions seen" % totals["duplicate_sessions"])
    if totals["sessions_lost"]:
        failures.append("%d persistent sessions lost (Session Present 0 where 1 was due)"
                        % totals["sessions_lost"])
    if totals["client_errors"]:
        failures.append("%d client threads failed" % totals["client_errors"])
    bad_faults = [r for r in run.fault_records if not r["ok"] and not r.get("skipped")]
    for r in bad_faults:
        failures.append("fault %s at %.1fs: %s" % (r["fault"], r["at"], r["notes"]))
    if run.opts.fail_on_order and totals["order_breaks"]:
        failures.append("%d order breaks (--fail-on-order)" % totals["order_breaks"])
    if totals["acknowledged"] == 0:
        failures.append("nothing was acknowledged: no check was made")
    return {
        "tool": "mqtt-chaos", "run_id": run.run_id, "seed": run.seed,
        "cluster": run.cluster.describe(), "nodes": run.cluster.size(),
        "options": run.options_for_report(), "wall_s": round(run.wall_s, 1),
        "self_test_drop": dropped,
        "faults": [{k: v for k, v in r.items() if not k.startswith("_")}
                   for r in run.fault_records],
        "totals": totals, "lost_by_fault": lost_by_fault,
        "qos2_duplicates_by_fault": dup2_by_fault, "subscribers": per_sub,
        "publishers": [{"client_id": p.client_id, "version": "5.0" if p.version == 5 else "3.1.1",
                        "qos": p.qos, "node": p.target, "sent": len(p.sent),
                        "acknowledged": len(p.acked), "connects": p.connects,
                        "order_breaks": per_pub_order[p.client_id]} for p in pubs],
        "duplicate_sessions": run.duplicate_sessions,
        "sessions_lost": [{"client_id": c, "time": t, "node": n} for c, t, n in sessions_lost],
        "t0_wall": run.t0_wall,
        "log_lines": run.suspicious_log_lines(failures),
        "failures": failures, "passed": not failures,
    }


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.2f" % v
    return str(v)


def _table(headers, rows):
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(_fmt(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def human(report):
    t = report["totals"]
    out = ["mqtt-chaos run %s, seed %d, %s, %.0fs" % (report["run_id"], report["seed"],
                                                      report["cluster"], report["wall_s"]), ""]
    rows = [(i + 1, r["at"], r["fault"], r["target"], "skipped" if r.get("skipped") else
             ("ok" if r["ok"] else "FAILED"), r.get("converge_s"), r.get("notes", "").strip())
            for i, r in enumerate(report["faults"])]
    out += [_table(("#", "at s", "fault", "target", "result", "converge s", "notes"), rows), ""]
    rows = [("messages acknowledged (QoS 1 / QoS 2)", "%d (%d / %d)" % (
                t["acknowledged"], t["acknowledged_qos1"], t["acknowledged_qos2"])),
            ("deliveries expected / made", "%d / %d" % (t["expected_deliveries"],
                                                        t["delivered"])),
            ("acknowledged messages LOST", t["lost"]),
            ("QoS 2 duplicates", t["qos2_duplicates"]),
            ("QoS 1 duplicates (allowed)", t["qos1_duplicates"]),
            ("order breaks (reported)", t["order_breaks"]),
            ("duplicate sessions seen", t["duplicate_sessions"]),
            ("persistent sessions lost", t["sessions_lost"]),
            ("unacknowledged at the end", t["unacknowledged_at_end"])]
    out += [_table(("figure", "value"), rows), ""]
    rows = [(s["client_id"], s["version"], s["filter"].split("/", 2)[-1], s["expected"],
             s["delivered"], s["lost"], s["qos2_duplicates"], s["qos1_duplicates"],
             s["order_breaks"], s["moves"]) for s in report["subscribers"]]
    out += [_table(("subscriber", "ver", "filter", "expected", "delivered", "lost", "q2 dup",
                    "q1 dup", "order", "moves"), rows), ""]
    rows = [(p["client_id"], p["version"], p["qos"], p["node"], p["sent"], p["acknowledged"],
             p["order_breaks"]) for p in report["publishers"]]
    out += [_table(("publisher", "ver", "qos", "node", "sent", "acked", "order breaks"), rows)]
    for what, key in (("LOST", "lost_by_fault"), ("QoS 2 duplicates",
                                                   "qos2_duplicates_by_fault")):
        for where, count in sorted(report[key].items()):
            out.append("%s: %d published after fault %s" % (what, count, where))
    for s in report["subscribers"]:
        for lost in s["lost_first"][:5]:
            out.append("LOST at %s: %s#%d (QoS %d, sent %s, acked %s, after %s)" % (
                s["client_id"], lost["publisher"], lost["seq"], lost["qos"],
                _fmt(lost["sent"]), _fmt(lost["acked"]), lost["after_fault"]))
        if s["qos2_duplicates_first"]:
            out.append("QoS 2 DUPLICATES at %s: %s" % (s["client_id"],
                                                         ", ".join(s["qos2_duplicates_first"])))
    for d in report["duplicate_sessions"]:
        out.append("DUPLICATE SESSION: %r" % d)
    if report["self_test_drop"]:
        out.append("self-test: the subscriber side threw away %s" % report["self_test_drop"])
    out.append("")
    out.append("PASSED" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))
    return "\n".join(out)


def write_json(report, path):
    with open(path, "w") as f:
        json.dump(report, f, indent=2, default=str)
        f.write("\n")
