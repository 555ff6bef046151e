// SPDX-License-Identifier: Apache-2.0
// The scenarios of mqtt-bench; see mqtt_bench.cc for the flags.
#pragma once

#include <sys/types.h>

#include <string>

#include "tls.h"

namespace bench {

struct Options {
  std::string scenario = "qos";
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string
      sub_host;      // subscribers connect here (default: host); cluster requires it or sub_port
  int sub_port = 0;  // (default: port)
  int qos = 0;
  int inflight = 16;  // QoS 1/2 window per publisher
  int payload = 64;   // bytes
  int publishers = -1;
  int subscribers = -1;
  double rate = -1;           // msg/s over all publishers; 0 = as fast as possible
  int connections = 10000;    // connect, idle; manyconn: 50,000 (capped by the descriptor limits)
  int concurrency = 100;      // handshakes in progress at once (Mosquitto's listen backlog)
  double duration = 10;       // measured seconds
  double warmup = -1;         // seconds before measuring; default min(2, duration / 5)
  double settle = 2;          // idle: seconds to wait before reading the broker's RSS
  double conn_rate = 1;       // manyconn: msg/s per publishing connection
  long messages = 2'000'000;  // burst: messages in the burst
  double pause = 5;           // burst: seconds the subscriber reads nothing from the burst start
  long fd_limit = -1;         // filled in: this process's RLIMIT_NOFILE after raising it
  pid_t broker_pid = 0;
  long max_backlog = 50000;  // QoS 0: pause publishing at this many undelivered deliveries
  int burst = 32 * 1024;     // QoS 0 open loop: bytes generated per publisher per loop turn
  int keepalive = 60;
  bool clean_session = true;    // false: persistent sessions (with --client-prefix, stable ids)
  std::string topic = "bench";  // topic prefix
  std::string client_prefix;    // default: mb<pid>
  bool tls = false;             // every connection over TLS (tls_options)
  TlsOptions tls_options;
  std::string tls_server_name;  // verified (and SNI); default: the IP address connected to
};

// Runs the scenario and prints one line of JSON on stdout. Returns the process exit code:
// 0 ok, 1 error (setup failed, connection lost), 3 messages lost at QoS 1/2.
int RunScenario(Options opt);

}  // namespace bench
