// SPDX-License-Identifier: Apache-2.0
// mqtt-bench: a one-thread epoll MQTT 3.1.1 load generator. It holds every publisher and
// subscriber of a scenario in one process, stamps each payload with its send time and a
// per-publisher sequence number, and prints one line of JSON per run. See docs/performance.md.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "scenarios.h"

namespace {

constexpr char kUsage[] = R"(usage: mqtt-bench --scenario NAME [options]

scenarios:
  qos       1 publisher -> 1 subscriber at --qos (QoS 0 open loop, QoS 1/2 windowed)
  fanin     --publishers N (16) -> 1 subscriber on TOPIC/+/x
  fanout    1 publisher -> --subscribers N (100); rate is deliveries/s
  shared    1 publisher -> $share/g/TOPIC/t group of --subscribers N (8)
  latency   1 -> 1 at a fixed --rate (5000 msg/s); p50/p90/p99/p99.9 in us
  connect   open --connections N (10000) clients, --concurrency handshakes at once (100)
  idle      open --connections N idle clients; broker RSS growth per connection
            (needs --broker-pid)
  cluster   like qos, publishing on --host/--port, subscribing on --sub-host/--sub-port
  manyconn  --connections N (50000) in all: --subscribers (1) on TOPIC/c/+, the others each
            publishing --conn-rate (1) msg/s to TOPIC/c/<i>, evenly spread over each second;
            QoS 1 unless --qos; --duration 60 unless given; broker RSS (needs --broker-pid).
            N is capped by this process's and the broker's descriptor limits (reported)
  burst     open-loop burst of --messages (2000000) QoS 0 messages, 1 -> 1; the subscriber
            reads nothing for the first --pause (5) s; broker peak RSS (needs --broker-pid),
            longest gap between deliveries after the pause, loss

options (defaults in brackets):
  --host H [127.0.0.1]  --port P [1883]
  --sub-host H  --sub-port P [host, port] (subscribers connect here: any scenario that
            publishes and subscribes, e.g. latency across two cluster nodes; cluster needs one)
  --qos 0|1|2 [0]  --inflight N [16]  --payload BYTES [64, min 20]
  --publishers N  --subscribers N  --rate MSG_PER_S [0 = unbounded; latency 5000]
  --connections N [10000; manyconn 50000]  --concurrency N [100]
  --conn-rate MSG_PER_S [1] (manyconn, per publisher)
  --messages N [2000000] (burst)  --pause S [5] (burst: subscriber reads nothing)
  --duration S [10; manyconn 60] (measured)  --warmup S [min(2, duration/5)]  --settle S [2] (idle)
  --broker-pid PID (broker CPU % and RSS)
  --max-backlog N [50000] (QoS 0: cap on undelivered deliveries; 0 = socket buffers only)
  --burst BYTES [32768] (QoS 0 bytes per publisher per loop turn)
  --keepalive S [60]  --topic PREFIX [bench]  --client-prefix ID
  --clean-session 0|1 [1] (0: persistent sessions, written to disk by brokers that persist)
  --tls  every connection over TLS (OpenSSL; handshakes are timed like TCP connects)
    --cafile F [system CAs]  --insecure (no certificate verification)
    --servername NAME [none: the certificate must name the IP address connected to]
    --cert F --key F (client certificate)  --tls-min-version 1.2|1.3 [1.2]
    --tls-ciphersuites LIST  --tls-groups LIST [OpenSSL's defaults; e.g.
    TLS_AES_128_GCM_SHA256 and X25519 pin what both brokers negotiate]
exit status: 0 ok, 1 error, 2 usage, 3 messages lost at QoS 1/2
)";

[[noreturn]] void Usage(const char* why) {
  if (why) std::fprintf(stderr, "mqtt-bench: %s\n", why);
  std::fputs(kUsage, stderr);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Options o;
  bool qos_given = false, duration_given = false, connections_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") Usage(nullptr);
    if (arg == "--tls") {  // switches: no value
      o.tls = true;
      continue;
    }
    if (arg == "--insecure") {
      o.tls_options.insecure = true;
      continue;
    }
    if (arg.substr(0, 2) != "--") Usage(("unexpected argument " + std::string(arg)).c_str());
    std::string name(arg.substr(2)), value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      Usage(("missing value for --" + name).c_str());
    }
    char* end = nullptr;
    const double num = std::strtod(value.c_str(), &end);
    const bool numeric = end && *end == 0 && !value.empty();
    auto need_num = [&] {
      if (!numeric) Usage(("--" + name + " needs a number").c_str());
      return num;
    };
    if (name == "scenario") {
      o.scenario = value;
    } else if (name == "host") {
      o.host = value;
    } else if (name == "port") {
      o.port = int(need_num());
    } else if (name == "sub-host") {
      o.sub_host = value;
    } else if (name == "sub-port") {
      o.sub_port = int(need_num());
    } else if (name == "qos") {
      o.qos = int(need_num());
      qos_given = true;
    } else if (name == "inflight") {
      o.inflight = int(need_num());
    } else if (name == "payload") {
      o.payload = int(need_num());
    } else if (name == "publishers") {
      o.publishers = int(need_num());
    } else if (name == "subscribers") {
      o.subscribers = int(need_num());
    } else if (name == "rate") {
      o.rate = need_num();
    } else if (name == "connections") {
      o.connections = int(need_num());
      connections_given = true;
    } else if (name == "concurrency") {
      o.concurrency = int(need_num());
    } else if (name == "duration") {
      o.duration = need_num();
      duration_given = true;
    } else if (name == "warmup") {
      o.warmup = need_num();
    } else if (name == "settle") {
      o.settle = need_num();
    } else if (name == "broker-pid") {
      o.broker_pid = pid_t(need_num());
    } else if (name == "conn-rate") {
      o.conn_rate = need_num();
    } else if (name == "messages") {
      o.messages = long(need_num());
    } else if (name == "pause") {
      o.pause = need_num();
    } else if (name == "max-backlog") {
      o.max_backlog = long(need_num());
    } else if (name == "burst") {
      o.burst = int(need_num());
    } else if (name == "keepalive") {
      o.keepalive = int(need_num());
    } else if (name == "topic") {
      o.topic = value;
    } else if (name == "client-prefix") {
      o.client_prefix = value;
    } else if (name == "clean-session") {
      o.clean_session = need_num() != 0;
    } else if (name == "cafile") {
      o.tls_options.cafile = value;
    } else if (name == "cert") {
      o.tls_options.cert = value;
    } else if (name == "key") {
      o.tls_options.key = value;
    } else if (name == "servername") {
      o.tls_server_name = value;
    } else if (name == "tls-min-version") {
      if (value != "1.2" && value != "1.3") Usage("--tls-min-version must be 1.2 or 1.3");
      o.tls_options.min_version = value;
    } else if (name == "tls-ciphersuites") {
      o.tls_options.ciphersuites = value;
    } else if (name == "tls-groups") {
      o.tls_options.groups = value;
    } else {
      Usage(("unknown option --" + name).c_str());
    }
  }
  static constexpr const char* kScenarios[] = {"qos",     "fanin", "fanout",  "shared",   "latency",
                                               "connect", "idle",  "cluster", "manyconn", "burst"};
  bool known = false;
  for (const char* s : kScenarios) known = known || o.scenario == s;
  if (!known) Usage(("unknown scenario " + o.scenario).c_str());
  if (o.scenario == "manyconn") {
    if (!qos_given) o.qos = 1;
    if (!duration_given) o.duration = 60;
    if (!connections_given) o.connections = 50000;
    if (o.conn_rate <= 0) Usage("--conn-rate must be > 0");
  }
  if (o.scenario == "burst") {
    if (o.qos != 0) Usage("burst is QoS 0");
    if (o.messages < 1) Usage("--messages must be > 0");
    if (o.pause < 0) Usage("--pause must be >= 0");
  }
  if ((o.scenario == "manyconn" || o.scenario == "burst") && o.broker_pid <= 0) {
    std::fprintf(stderr, "mqtt-bench: %s without --broker-pid reports no RSS\n",
                 o.scenario.c_str());
  }
  const bench::TlsOptions& t = o.tls_options;
  if (!o.tls && (t.insecure || !t.cafile.empty() || !t.cert.empty() || !t.key.empty() ||
                 !o.tls_server_name.empty() || !t.ciphersuites.empty() || !t.groups.empty())) {
    Usage("TLS options need --tls");
  }
  if (t.cert.empty() != t.key.empty()) Usage("--cert and --key go together");
  if (o.qos < 0 || o.qos > 2) Usage("--qos must be 0, 1 or 2");
  if (o.inflight < 1 || o.inflight > 65535) Usage("--inflight must be in 1..65535");
  if (o.payload < 20 || o.payload > 256 * 1024 * 1024) Usage("--payload must be >= 20 bytes");
  if (o.duration <= 0) Usage("--duration must be > 0");
  if (o.connections < 1 || o.concurrency < 1) Usage("--connections and --concurrency must be > 0");
  if (o.keepalive < 1 || o.keepalive > 65535) Usage("--keepalive must be in 1..65535");
  if (o.scenario == "cluster" && (o.sub_host.empty() && o.sub_port == 0)) {
    Usage("cluster needs --sub-host and/or --sub-port");
  }
  if (o.scenario == "idle" && o.broker_pid <= 0) {
    std::fprintf(stderr, "mqtt-bench: idle without --broker-pid reports no RSS\n");
  }
  return bench::RunScenario(o);
}
