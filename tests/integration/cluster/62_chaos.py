#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The loss checker's short run in CI (issue 12, bench/mqtt-chaos, docs/chaos.md).

- A 3-node cluster in network namespaces (root needed, as 55_partition: it fails, it does not
  skip) with numbered QoS 1 / QoS 2 publishers and persistent subscribers at 3.1.1 and 5.0, and
  the faults kill (SIGKILL and restart), partition, move, concurrent, drain: no acknowledged
  message lost (invariant 3), QoS 2 exactly once [MQTT-4.3.3], one connection per client id
  [MQTT-3.1.4-2] (invariant 1), Session Present 1 after every move [MQTT-3.2.2-2], and no
  persistent session lost to a client reconnecting during a drain (the race fixed by
  node/session/import_gate.h: docs/chaos.md, "Failures it found").
- The checker can fail: with --self-test-drop (the subscriber side throws one acknowledged
  message away) the same tool must exit 1 and report exactly one lost message.
- Faults that need process control are refused on a cluster reached with --nodes (exit 2).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
TOOL = os.path.join(REPO, "bench", "mqtt-chaos", "mqtt-chaos")
MQTTD = os.environ.get("MQTTD_BIN", "")
MQTTCTL = os.environ.get("MQTTCTL_BIN", "")


class Chaos(unittest.TestCase):

    def setUp(self):
        if not MQTTD or not MQTTCTL:
            self.skipTest("MQTTD_BIN / MQTTCTL_BIN not set (run through ctest)")
        self.tmp = tempfile.mkdtemp(prefix="chaos-test-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])

    def run_tool(self, *args, timeout=200):
        """(exit code, report dict or None, stdout+stderr)."""
        path = os.path.join(self.tmp, "report-%d.json" % time.monotonic_ns())
        cmd = [TOOL, "--mqttd", MQTTD, "--mqttctl", MQTTCTL, "--json", path] + list(args)
        t0 = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        sys.stderr.write("%s: exit %d in %.1fs\n%s\n" % (" ".join(args), out.returncode,
                                                        time.monotonic() - t0, out.stdout))
        report = None
        if os.path.exists(path):
            with open(path) as f:
                report = json.load(f)
        return out.returncode, report, out.stdout + out.stderr

    def test_short_run_with_faults_loses_nothing(self):
        code, report, text = self.run_tool(
            "--node-count", "3", "--publishers", "4", "--subscribers", "4", "--rate", "15",
            "--faults", "kill,partition,move,concurrent,drain", "--every", "6s", "--duration", "34s",
            "--hold", "2", "--seed", "62", "--netns", "yes")
        self.assertIsNotNone(report, text)
        totals = report["totals"]
        self.assertEqual(report["failures"], [], text)
        self.assertEqual(code, 0, text)
        self.assertGreater(totals["acknowledged_qos1"], 100, text)
        self.assertGreater(totals["acknowledged_qos2"], 100, text)
        self.assertEqual(totals["lost"], 0)
        self.assertEqual(totals["qos2_duplicates"], 0)
        self.assertEqual(totals["duplicate_sessions"], 0)
        done = {f["fault"]: f for f in report["faults"]}
        self.assertEqual(sorted(done), ["concurrent", "drain", "kill", "move", "partition"], text)
        for name in ("kill", "partition", "move", "concurrent", "drain"):
            self.assertTrue(done[name]["ok"], done[name])
            self.assertIsNotNone(done[name]["converge_s"], "%s: never converged" % name)
        self.assertIn("SP=1", done["move"]["notes"])
        self.assertEqual(done["concurrent"]["concurrent"]["alive"], 1, done["concurrent"])
        self.assertFalse(done["drain"].get("skipped"), done["drain"])
        self.assertEqual([s["version"] for s in report["subscribers"]],
                         ["3.1.1", "5.0", "3.1.1", "5.0"])

    def test_self_test_drop_makes_the_checker_fail(self):
        code, report, text = self.run_tool(
            "--node-count", "3", "--publishers", "2", "--subscribers", "2", "--rate", "20",
            "--faults", "move", "--every", "4s", "--duration", "7s", "--netns", "no",
            "--self-test-drop")
        self.assertEqual(code, 1, text)
        self.assertIsNotNone(report, text)
        self.assertEqual(report["totals"]["lost"], 1, text)
        self.assertIsNotNone(report["self_test_drop"])
        self.assertIn("1 acknowledged messages lost", report["failures"])
        self.assertIn("FAILED", text)

    def test_process_faults_refused_on_an_existing_cluster(self):
        code, _report, text = self.run_tool("--nodes", "127.0.0.1:1", "--faults", "kill",
                                            "--every", "2s", "--duration", "5s", timeout=60)
        self.assertEqual(code, 2, text)
        self.assertIn("needs process control", text)
        # Without faults that need it, an unreachable cluster is an error of its own (exit 3).
        code, _report, text = self.run_tool("--nodes", "127.0.0.1:1,127.0.0.1:2", "--faults",
                                            "move", "--every", "2s", "--duration", "5s",
                                            timeout=60)
        self.assertEqual(code, 3, text)
        self.assertIn("does not accept connections", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
