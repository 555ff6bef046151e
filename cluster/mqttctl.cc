// SPDX-License-Identifier: Apache-2.0
// mqttctl: the admin CLI of an mqttd cluster. Talks to one node's admin gRPC service
// (proto/admin.proto) on its cluster port and prints what that node sees.
//
//   mqttctl [--server HOST:PORT] [--json] members
//   mqttctl [--server HOST:PORT] [--json] routes [--node ID] [--filter F]
//   mqttctl [--server HOST:PORT] [--json] retained [--topic F]
//   mqttctl [--server HOST:PORT] [--json] status
//   mqttctl [--server HOST:PORT] [--json] sessions [--client-id ID] [--node ID] [--limit N]
//   mqttctl [--server HOST:PORT] [--json] kick CLIENT_ID
//   mqttctl [--server HOST:PORT] [--json] drain [--node ID] [--timeout SECONDS]
//   mqttctl [--server HOST:PORT] rebalance [--tolerance PCT] [--rate N] [--timeout SECONDS]
//   mqttctl [--server HOST:PORT] [--json] bridges [--node ID]
//   mqttctl passwd [-c] [-b] [-D] FILE USER [PASSWORD]   (local: node/auth/passwd_command.h)
//
// A node with cluster TLS (--cluster-tls-*) takes mqttctl with --tls-cert/--tls-key/--tls-ca
// only: a certificate of the cluster CA (cluster/cluster_tls.h).
//
// `members`, `sessions` and `bridges` ask every alive member too (the node asked gives the
// members). Exit status: 0 ok, 1 the node could not be reached or answered with an error (sessions:
// no member answered; kick: no node had the client connected; drain: a session stayed on the node
// or a forwarded message was not delivered), 2 usage.
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cluster/cluster_tls.h"
#include "google/protobuf/util/json_util.h"
#include "node/auth/passwd_command.h"
#include "proto/admin.grpc.pb.h"

namespace {

constexpr char kUsage[] = R"(usage: mqttctl [--server HOST:PORT] [--json] COMMAND [options]

commands:
  members                      the cluster's members as the node sees them (with each alive
                               member's connected clients, asked of that member)
  routes [--node ID] [--filter F]
                               the route table: which node's subscribers hold which filter
  retained [--topic F]         the retained messages the node holds (F may have wildcards),
                               with their versions; deletes not yet collected show as tombstones
  status                       the node itself: version, uptime, clients, store, and what it
                               forwards to each peer
  sessions [--client-id ID] [--node ID] [--limit N]
                               the sessions of every alive member (or of one node), by client
                               id: connected or offline, protocol, persistent, subscriptions,
                               queued messages, expiry, registry epoch; at most N [1000]
  kick CLIENT_ID               disconnects that client wherever it is connected (5.0: DISCONNECT
                               0x98 Administrative action); a clean session ends, a persistent
                               one stays offline
  drain [--node ID] [--timeout SECONDS]
                               drains the node (or the member ID): it stops accepting, disconnects
                               its clients (5.0: 0x8B, or 0x9C with its server_reference), hands
                               its persistent sessions to the other nodes, leaves the cluster and
                               exits 0; waits for it [300 s] and prints what moved
  rebalance [--tolerance PCT] [--rate N] [--timeout SECONDS]
                               spreads the connections evenly: each alive node holding more than
                               its share (+ PCT %) [10] closes the excess, N per second [100]
                               (5.0: 0x9C with its server_reference, else 0x8B), so that those
                               clients reconnect through the load balancer (their persistent
                               sessions follow them); waits until every node is within PCT % of
                               its share [60 s]; exit 1 if it is not
  bridges [--node ID]          the configured bridges (docs/bridges.md) as every alive member
                               (or one node) sees them: the node running each, connected or not,
                               remote address, protocol, messages out/in, its local session's
                               queue, the remote's Receive Maximum, failed attempts and the last
                               error (the remote's refusal reason or the socket error)
  passwd [-c] FILE USER | passwd [-c] -b FILE USER PASSWORD | passwd -D FILE USER
                               adds, changes (password from the terminal or stdin, or -b) or
                               deletes (-D) a user of a password file in Mosquitto's format ($7$);
                               -c creates the file. Local: talks to no node

options:
  --server HOST:PORT   the node's cluster address (its --cluster-listen) [127.0.0.1:7946]
  --json               print the node's answer as JSON instead of a table
  --tls-cert FILE, --tls-key FILE, --tls-ca FILE
                       mutual TLS to a node with cluster TLS on: a certificate and key issued
                       by the cluster CA, and that CA (all three or none)
  --tls-server-name NAME
                       the name the nodes' certificates carry [mqttd-cluster]
)";

[[noreturn]] void Usage(const std::string& why) {
  if (!why.empty()) std::cerr << "mqttctl: " << why << "\n";
  std::cerr << kUsage;
  std::exit(2);
}

struct Args {
  std::string server = "127.0.0.1:7946";
  bool json = false;
  std::string command;
  std::string node;
  std::string filter;
  std::string topic;
  std::string client_id;  // sessions: --client-id; kick: its argument
  uint32_t limit = 1000;
  uint32_t timeout_seconds = 0;  // drain [300], rebalance [60]
  uint32_t tolerance_percent = 10;
  uint32_t rate = 100;
  mqtt::cluster::ClusterTlsFiles tls;
};

Args Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(absl::StrCat("option ", std::string(arg), " needs a value"));
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") Usage("");
    if (arg == "--server") {
      args.server = value();
    } else if (arg == "--json") {
      args.json = true;
    } else if (arg == "--tls-cert") {
      args.tls.cert_file = value();
    } else if (arg == "--tls-key") {
      args.tls.key_file = value();
    } else if (arg == "--tls-ca") {
      args.tls.ca_file = value();
    } else if (arg == "--tls-server-name") {
      args.tls.server_name = value();
    } else if (arg == "--node") {
      args.node = value();
    } else if (arg == "--filter") {
      args.filter = value();
    } else if (arg == "--topic") {
      args.topic = value();
    } else if (arg == "--client-id") {
      args.client_id = value();
    } else if (arg == "--limit") {
      const std::string n = value();
      if (!absl::SimpleAtoi(n, &args.limit) || args.limit == 0) {
        Usage(absl::StrCat("--limit: not a positive number: '", n, "'"));
      }
    } else if (arg == "--tolerance") {
      const std::string n = value();
      if (!absl::SimpleAtoi(n, &args.tolerance_percent) || args.tolerance_percent > 100) {
        Usage(absl::StrCat("--tolerance: not a percentage: '", n, "'"));
      }
    } else if (arg == "--rate") {
      const std::string n = value();
      if (!absl::SimpleAtoi(n, &args.rate) || args.rate == 0) {
        Usage(absl::StrCat("--rate: not a positive number: '", n, "'"));
      }
    } else if (arg == "--timeout") {
      const std::string n = value();
      if (!absl::SimpleAtoi(n, &args.timeout_seconds) || args.timeout_seconds == 0) {
        Usage(absl::StrCat("--timeout: not a positive number of seconds: '", n, "'"));
      }
    } else if (args.command.empty() && !arg.starts_with("-")) {
      args.command = std::string(arg);
    } else if (args.command == "kick" && args.client_id.empty() && !arg.starts_with("-")) {
      args.client_id = std::string(arg);
    } else {
      Usage(absl::StrCat("unexpected argument '", std::string(arg), "'"));
    }
  }
  if (args.command != "members" && args.command != "routes" && args.command != "retained" &&
      args.command != "status" && args.command != "sessions" && args.command != "kick" &&
      args.command != "drain" && args.command != "rebalance" && args.command != "bridges") {
    Usage(args.command.empty() ? "no command"
                               : absl::StrCat("unknown command '", args.command, "'"));
  }
  if (args.command == "kick" && args.client_id.empty()) Usage("kick: no client id given");
  if (args.timeout_seconds == 0) args.timeout_seconds = args.command == "drain" ? 300 : 60;
  if (args.tls.enabled() &&
      (args.tls.cert_file.empty() || args.tls.key_file.empty() || args.tls.ca_file.empty())) {
    Usage("--tls-cert, --tls-key and --tls-ca go together");
  }
  return args;
}

// Prints rows as columns padded to the widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

int Fail(const Args& args, const grpc::Status& status) {
  std::cerr << "mqttctl: " << args.server << ": "
            << (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                    ? "cannot reach the node: "
                    : "")
            << status.error_message() << "\n";
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << "mqttctl: (a node with cluster TLS refuses a connection without a certificate "
                 "of the cluster CA: --tls-cert/--tls-key/--tls-ca)\n";
  }
  return 1;
}

template <typename Message>
void PrintJson(const Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json;
}

std::string Age(int64_t started_at_unix_ms) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t s = std::max<int64_t>(0, (now - started_at_unix_ms) / 1000);
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  return absl::StrCat(s / 3600, "h");
}

// How every channel of this run dials: set once by main (TLS from --tls-*), then read only.
struct Dial {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
};
Dial& dial() {
  static Dial d;
  return d;
}

std::unique_ptr<mqtt::admin::v1::Admin::Stub> Connect(const std::string& address) {
  return mqtt::admin::v1::Admin::NewStub(
      grpc::CreateCustomChannel(address, dial().credentials, dial().args));
}

void SetDeadline(grpc::ClientContext* ctx, std::chrono::milliseconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

// Each alive member's connected clients, asked of the member itself (1 s each; left unset for a
// member that does not answer).
void AddClients(mqtt::admin::v1::MembersResponse* response) {
  for (auto& m : *response->mutable_members()) {
    if (m.state() != "alive") continue;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, std::chrono::seconds(1));
    mqtt::admin::v1::StatusResponse status;
    if (Connect(m.address())->Status(&ctx, {}, &status).ok()) m.set_clients(status.clients());
  }
}

int Members(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::MembersResponse response;
  grpc::Status status = stub.Members(ctx, {}, &response);
  if (!status.ok()) return Fail(args, status);
  AddClients(&response);
  if (args.json) {
    PrintJson(response);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "ADDRESS", "STATE", "INCARNATION", "UPTIME", "CLIENTS"}};
  for (const auto& m : response.members()) {
    rows.push_back({m.node_id(), m.address(), m.state(), std::to_string(m.incarnation()),
                    m.started_at_unix_ms() > 0 ? Age(m.started_at_unix_ms()) : "-",
                    m.has_clients() ? std::to_string(m.clients()) : "-"});
  }
  PrintTable(rows);
  return 0;
}

int Retained(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::RetainedRequest request;
  request.set_topic(args.topic);
  mqtt::admin::v1::RetainedResponse response;
  grpc::Status status = stub.Retained(ctx, request, &response);
  if (!status.ok()) return Fail(args, status);
  if (args.json) {
    PrintJson(response);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "BYTES", "ORIGIN", "HLC", "STATE"}};
  for (const auto& e : response.entries()) {
    rows.push_back({e.topic(), e.tombstone() ? "-" : std::to_string(e.payload_bytes()), e.origin(),
                    std::to_string(e.hlc()), e.tombstone() ? "deleted" : "set"});
  }
  PrintTable(rows);
  return 0;
}

int Status(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::StatusResponse r;
  grpc::Status status = stub.Status(ctx, {}, &r);
  if (!status.ok()) return Fail(args, status);
  if (args.json) {
    PrintJson(r);
    return 0;
  }
  PrintTable({{"node", r.node_id()},
              {"version", r.version()},
              {"uptime", Age(r.started_at_unix_ms())},
              {"clients", std::to_string(r.clients())},
              {"subscriptions", std::to_string(r.subscriptions())},
              {"retained", std::to_string(r.retained())},
              {"queued messages", std::to_string(r.queued_messages())},
              {"stored messages", std::to_string(r.stored_messages())},
              {"duplicates dropped", std::to_string(r.forward_duplicates_dropped())}});
  if (r.outboxes().empty()) return 0;
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows = {{"PEER", "ADDRESS", "CONNECTED", "QUEUED", "BYTES",
                                                 "DURABLE", "FORWARDED", "DROPPED", "HELD ACKS"}};
  for (const auto& o : r.outboxes()) {
    rows.push_back({o.node_id(), o.address(), o.connected() ? "yes" : "no",
                    std::to_string(o.queued()), std::to_string(o.queued_bytes()),
                    std::to_string(o.durable_queued()), std::to_string(o.forwarded()),
                    std::to_string(o.dropped()), std::to_string(o.held_acks())});
  }
  PrintTable(rows);
  return 0;
}

int Routes(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::RoutesRequest request;
  request.set_node_id(args.node);
  request.set_filter(args.filter);
  mqtt::admin::v1::RoutesResponse response;
  grpc::Status status = stub.Routes(ctx, request, &response);
  if (!status.ok()) return Fail(args, status);
  if (args.json) {
    PrintJson(response);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"NODE", "FILTER", "SHARED GROUP", "PERSISTENT"}};
  for (const auto& r : response.routes()) {
    rows.push_back({r.node_id(), r.filter(), r.shared_group().empty() ? "-" : r.shared_group(),
                    r.persistent() ? "yes" : "no"});
  }
  PrintTable(rows);
  return 0;
}

using MemberList = std::vector<std::pair<std::string, std::string>>;  // (node id, address)

// Asks every member at once, 3 s each (a node waits up to 2 s for its workers), with
// `rpc(stub, ctx, response)`; hands each answer to `take` in member order and names a member
// that does not answer in `merged`'s unanswered_nodes.
template <typename Response, typename Rpc, typename Take>
void AskEvery(const MemberList& members, Rpc rpc, Take take, Response* merged) {
  std::vector<std::future<std::pair<grpc::Status, Response>>> answers;
  for (const auto& member : members) {
    answers.push_back(std::async(std::launch::async, [&rpc, address = member.second] {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, std::chrono::seconds(3));
      Response response;
      grpc::Status status = rpc(*Connect(address), &ctx, &response);
      return std::make_pair(status, std::move(response));
    }));
  }
  for (size_t i = 0; i < members.size(); ++i) {
    auto [status, response] = answers[i].get();
    if (status.ok()) {
      take(&response);
      continue;
    }
    std::cerr << "mqttctl: " << members[i].first << " (" << members[i].second
              << "): no answer: " << status.error_message() << "\n";
    merged->add_unanswered_nodes(members[i].first);
  }
}

// Every member's sessions, merged by client id (then node).
mqtt::admin::v1::SessionsResponse AskSessions(const Args& args, const MemberList& members) {
  mqtt::admin::v1::SessionsRequest request;
  request.set_client_id(args.client_id);
  request.set_limit(args.limit + 1);  // one more: tells whether there were more
  mqtt::admin::v1::SessionsResponse merged;
  AskEvery(
      members,
      [&request](auto& stub, grpc::ClientContext* ctx, mqtt::admin::v1::SessionsResponse* r) {
        return stub.Sessions(ctx, request, r);
      },
      [&merged](mqtt::admin::v1::SessionsResponse* r) {
        for (auto& session : *r->mutable_sessions()) *merged.add_sessions() = std::move(session);
      },
      &merged);
  auto* sessions = merged.mutable_sessions();
  std::sort(sessions->begin(), sessions->end(), [](const auto& a, const auto& b) {
    return std::tie(a.client_id(), a.node_id()) < std::tie(b.client_id(), b.node_id());
  });
  if (sessions->size() > static_cast<int>(args.limit)) {
    sessions->DeleteSubrange(args.limit, sessions->size() - args.limit);
    merged.set_truncated(true);
  }
  return merged;
}

std::string Expiry(const mqtt::admin::v1::Session& s) {
  if (s.never_expires()) return "never";
  return absl::StrCat(s.expiry_interval(), "s");
}

// The members a cluster-wide command asks (the alive ones, or --node), as (node id, address),
// from `stub`'s node, whose answer is left in `members`. Non-zero: the exit status, after saying
// why (the node did not answer, or knows no such member).
int MembersToAsk(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx,
                 mqtt::admin::v1::MembersResponse* members, MemberList* asked) {
  grpc::Status status = stub.Members(ctx, {}, members);
  if (!status.ok()) return Fail(args, status);
  for (const auto& m : members->members()) {
    if (args.node.empty() ? m.state() == "alive" : m.node_id() == args.node) {
      asked->emplace_back(m.node_id(), m.address());
    }
  }
  if (asked->empty()) {
    std::cerr << "mqttctl: " << args.server << " knows no member " << args.node << "\n";
    return 1;
  }
  return 0;
}

int Sessions(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::MembersResponse members;
  MemberList asked;
  if (int rc = MembersToAsk(args, stub, ctx, &members, &asked); rc != 0) return rc;
  mqtt::admin::v1::SessionsResponse response = AskSessions(args, asked);
  response.set_node_id(members.node_id());
  const bool none_answered = response.unanswered_nodes_size() == static_cast<int>(asked.size());
  if (response.truncated()) {
    std::cerr << "mqttctl: more than " << args.limit << " sessions; the first " << args.limit
              << " by client id shown (--limit)\n";
  }
  if (args.json) {
    PrintJson(response);
    return none_answered ? 1 : 0;
  }
  std::vector<std::vector<std::string>> rows = {{"CLIENT ID", "NODE", "STATE", "PROTOCOL",
                                                 "SESSION", "SUBSCRIPTIONS", "QUEUED", "EXPIRY",
                                                 "EPOCH"}};
  for (const auto& s : response.sessions()) {
    rows.push_back({s.client_id(), s.node_id(), s.connected() ? "connected" : "offline",
                    s.protocol_version(), s.persistent() ? "persistent" : "clean",
                    std::to_string(s.subscriptions()), std::to_string(s.queued_messages()),
                    Expiry(s), s.registry_epoch() == 0 ? "-" : std::to_string(s.registry_epoch())});
  }
  PrintTable(rows);
  return none_answered ? 1 : 0;
}

int Kick(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::KickRequest request;
  request.set_client_id(args.client_id);
  mqtt::admin::v1::KickResponse response;
  grpc::Status status = stub.Kick(ctx, request, &response);
  if (!status.ok()) return Fail(args, status);
  if (!response.unanswered_nodes().empty()) {
    std::cerr << "mqttctl: no answer from " << absl::StrJoin(response.unanswered_nodes(), ", ")
              << "\n";
  }
  if (args.json) {
    PrintJson(response);
  } else if (!response.kicked_on().empty()) {
    std::cout << "kicked " << args.client_id << " on " << absl::StrJoin(response.kicked_on(), ", ")
              << "\n";
  }
  if (response.kicked_on().empty()) {
    std::cerr << "mqttctl: client " << args.client_id << " is not connected to any node\n";
    return 1;
  }
  return 0;
}

// The cluster address of member `node_id` as the node asked sees it; empty (after a message) if
// it does not know it.
std::string MemberAddress(const Args& args, mqtt::admin::v1::Admin::Stub& stub,
                          const std::string& node_id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, std::chrono::seconds(5));
  mqtt::admin::v1::MembersResponse response;
  grpc::Status status = stub.Members(&ctx, {}, &response);
  if (!status.ok()) {
    Fail(args, status);
    return "";
  }
  for (const auto& m : response.members()) {
    if (m.node_id() == node_id) return m.address();
  }
  std::cerr << "mqttctl: " << args.server << " knows no member '" << node_id << "'\n";
  return "";
}

int Drain(Args args, std::unique_ptr<mqtt::admin::v1::Admin::Stub> stub) {
  if (!args.node.empty()) {
    args.server = MemberAddress(args, *stub, args.node);
    if (args.server.empty()) return 1;
    stub = Connect(args.server);
  }
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(args.timeout_seconds);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  mqtt::admin::v1::DrainResponse response;
  grpc::Status status = stub->Drain(&ctx, {}, &response);
  if (!status.ok()) return Fail(args, status);
  // The node answers once everything is handed over, then leaves and exits: wait for that, so
  // that what runs after mqttctl (a pod's stop) finds the node gone.
  while (std::chrono::system_clock::now() < deadline) {
    grpc::ClientContext probe;
    SetDeadline(&probe, std::chrono::milliseconds(500));
    mqtt::admin::v1::StatusResponse ignored;
    if (!stub->Status(&probe, {}, &ignored).ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (args.json) {
    PrintJson(response);
  } else {
    std::cout << "drained " << response.node_id() << " in " << response.took_ms()
              << " ms: " << response.clients_closed() << " clients disconnected, "
              << response.sessions() << " persistent sessions: " << response.moved() << " moved, "
              << response.followed() << " followed their client, " << response.ended() << " ended, "
              << response.kept() << " kept on the node\n";
  }
  if (response.kept() != 0) {
    std::cerr << "mqttctl: " << response.kept()
              << " sessions stay in the node's data dir: " << response.kept_reason() << "\n";
  }
  if (response.outbox_left() != 0) {
    std::cerr << "mqttctl: " << response.outbox_left()
              << " forwarded messages were not acknowledged by their node; they stay in the "
                 "node's data dir\n";
  }
  return response.kept() == 0 && response.outbox_left() == 0 ? 0 : 1;
}

// Every member's view of the bridges, merged by name, then node.
mqtt::admin::v1::BridgesResponse AskBridges(const MemberList& members) {
  mqtt::admin::v1::BridgesResponse merged;
  AskEvery(
      members,
      [](auto& stub, grpc::ClientContext* ctx, mqtt::admin::v1::BridgesResponse* r) {
        return stub.Bridges(ctx, {}, r);
      },
      [&merged](mqtt::admin::v1::BridgesResponse* r) {
        for (auto& b : *r->mutable_bridges()) *merged.add_bridges() = std::move(b);
      },
      &merged);
  auto* bridges = merged.mutable_bridges();
  std::sort(bridges->begin(), bridges->end(), [](const auto& a, const auto& b) {
    return std::tie(a.name(), a.node_id()) < std::tie(b.name(), b.node_id());
  });
  return merged;
}

std::string BridgeState(const mqtt::admin::v1::Bridge& b) {
  if (b.connected()) return "connected";
  if (b.running()) return "connecting";
  return "standby";
}

// The table shows, per bridge, the node(s) running it and any other node whose local session
// still holds messages of it; a bridge running nowhere gets one row ("standby" everywhere).
std::vector<const mqtt::admin::v1::Bridge*> BridgeRows(
    const mqtt::admin::v1::BridgesResponse& response, bool every_row) {
  std::vector<const mqtt::admin::v1::Bridge*> rows;
  const auto& all = response.bridges();
  for (int i = 0; i < all.size();) {
    int end = i;
    while (end < all.size() && all[end].name() == all[i].name()) ++end;
    const size_t before = rows.size();
    for (int j = i; j < end; ++j) {
      if (every_row || all[j].running() || all[j].queued_messages() > 0) rows.push_back(&all[j]);
    }
    if (rows.size() == before) rows.push_back(&all[i]);
    i = end;
  }
  return rows;
}

int Bridges(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::MembersResponse members;
  MemberList asked;
  if (int rc = MembersToAsk(args, stub, ctx, &members, &asked); rc != 0) return rc;
  mqtt::admin::v1::BridgesResponse response = AskBridges(asked);
  response.set_node_id(members.node_id());
  const int rc = response.unanswered_nodes_size() == static_cast<int>(asked.size()) ? 1 : 0;
  if (args.json) {
    PrintJson(response);
    return rc;
  }
  std::vector<std::vector<std::string>> rows = {{"BRIDGE", "NODE", "STATE", "REMOTE", "PROTOCOL",
                                                 "SINCE", "OUT", "IN", "QUEUED", "INFLIGHT",
                                                 "FAILED", "LAST ERROR"}};
  for (const mqtt::admin::v1::Bridge* b : BridgeRows(response, !args.node.empty())) {
    std::string error = b->last_error().empty() ? "-" : b->last_error();
    if (b->last_error_unix_ms() > 0)
      absl::StrAppend(&error, " (", Age(b->last_error_unix_ms()), " ago)");
    std::string inflight = "-";
    if (b->connected()) inflight = absl::StrCat(b->inflight_out(), "/", b->send_window());
    rows.push_back(
        {b->name(), b->node_id(), BridgeState(*b),
         b->remote_address().empty() ? "-" : b->remote_address(), b->protocol_version(),
         b->connected() ? Age(b->connected_since_unix_ms()) : "-",
         std::to_string(b->messages_out()), std::to_string(b->messages_in()),
         b->has_queued_messages() ? std::to_string(b->queued_messages()) : "-", inflight,
         b->running() && !b->connected()
             ? absl::StrCat(b->failed_attempts(), " (backoff ", b->retry_delay_seconds(), "s)")
             : std::to_string(b->failed_attempts()),
         error});
  }
  PrintTable(rows);
  return rc;
}

struct NodeLoad {
  std::string node_id;
  std::string address;
  int64_t clients = -1;  // -1: did not answer
};

// The alive members and their connected clients, asked of each (1 s each).
std::vector<NodeLoad> Loads(const Args& args, mqtt::admin::v1::Admin::Stub& stub) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, std::chrono::seconds(5));
  mqtt::admin::v1::MembersResponse members;
  if (grpc::Status s = stub.Members(&ctx, {}, &members); !s.ok()) {
    Fail(args, s);
    return {};
  }
  std::vector<NodeLoad> loads;
  for (const auto& m : members.members()) {
    if (m.state() != "alive") continue;
    NodeLoad load{m.node_id(), m.address()};
    grpc::ClientContext c;
    SetDeadline(&c, std::chrono::seconds(1));
    mqtt::admin::v1::StatusResponse status;
    if (Connect(m.address())->Status(&c, {}, &status).ok()) load.clients = status.clients();
    loads.push_back(std::move(load));
  }
  return loads;
}

// Every node answered and holds between share - tolerance and share + tolerance.
bool Balanced(const std::vector<NodeLoad>& loads, uint32_t tolerance_percent, int64_t* share) {
  int64_t total = 0;
  for (const NodeLoad& l : loads) {
    if (l.clients < 0) return false;
    total += l.clients;
  }
  *share = loads.empty() ? 0 : (total + loads.size() - 1) / loads.size();
  const int64_t slack = std::max<int64_t>(1, *share * tolerance_percent / 100);
  return std::all_of(loads.begin(), loads.end(), [&](const NodeLoad& l) {
    return l.clients <= *share + slack && l.clients >= *share - slack;
  });
}

std::string LoadLine(const std::vector<NodeLoad>& loads) {
  std::vector<std::string> parts;
  for (const NodeLoad& l : loads) {
    parts.push_back(absl::StrCat(l.node_id, " ", l.clients < 0 ? "?" : std::to_string(l.clients)));
  }
  return absl::StrJoin(parts, ", ");
}

int Rebalance(const Args& args, mqtt::admin::v1::Admin::Stub& stub) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(args.timeout_seconds);
  std::vector<NodeLoad> loads = Loads(args, stub);
  if (loads.empty()) return 1;
  int64_t share = 0;
  std::cout << "before: " << LoadLine(loads) << "\n";
  if (Balanced(loads, args.tolerance_percent, &share)) {
    std::cout << "balanced already (share " << share << ")\n";
    return 0;
  }
  // Every node above its share sheds the excess, all at once (each at --rate).
  std::vector<std::future<uint64_t>> sheds;
  for (const NodeLoad& l : loads) {
    if (l.clients <= share) continue;
    sheds.push_back(std::async(std::launch::async, [&args, l, share] {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, std::chrono::seconds(args.timeout_seconds));
      mqtt::admin::v1::ShedRequest request;
      request.set_count(l.clients - share);
      request.set_rate_per_second(args.rate);
      mqtt::admin::v1::ShedResponse response;
      grpc::Status s = Connect(l.address)->Shed(&ctx, request, &response);
      if (!s.ok()) std::cerr << "mqttctl: " << l.node_id << ": " << s.error_message() << "\n";
      return response.shed();
    }));
  }
  uint64_t shed = 0;
  for (auto& f : sheds) shed += f.get();
  // The shed clients reconnect through the load balancer: wait until the spread is even.
  bool balanced = false;
  while (!(balanced = Balanced(loads = Loads(args, stub), args.tolerance_percent, &share)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::cout << "closed " << shed << " connections; after " << took.count()
            << " ms: " << LoadLine(loads) << (balanced ? " (balanced)" : " (not balanced)") << "\n";
  return balanced ? 0 : 1;
}

}  // namespace

int Run(const Args& args);

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "passwd") {
    return mqtt::auth::PasswdMain(argc - 2, argv + 2);
  }
  const Args args = Parse(argc, argv);
  grpc_init();  // held until every channel is gone (below)
  dial().credentials = grpc::InsecureChannelCredentials();
  if (args.tls.enabled()) {
    auto credentials = mqtt::cluster::StaticChannelCredentials(args.tls, &dial().args);
    if (!credentials.ok()) {
      std::cerr << "mqttctl: " << credentials.status().message() << "\n";
      grpc_shutdown_blocking();
      return 2;
    }
    dial().credentials = *credentials;
  }
  const int rc = Run(args);
  // Every channel is gone; the credentials (an SSL context) go before exit, and gRPC finishes
  // freeing what its threads still hold, so that nothing is reported as leaked.
  dial().credentials.reset();
  grpc_shutdown_blocking();
  return rc;
}

int Run(const Args& args) {
  auto stub = Connect(args.server);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, std::chrono::seconds(5));
  if (args.command == "members") return Members(args, *stub, &ctx);
  if (args.command == "routes") return Routes(args, *stub, &ctx);
  if (args.command == "retained") return Retained(args, *stub, &ctx);
  if (args.command == "sessions") return Sessions(args, *stub, &ctx);
  if (args.command == "bridges") return Bridges(args, *stub, &ctx);
  if (args.command == "drain") return Drain(args, std::move(stub));
  if (args.command == "rebalance") return Rebalance(args, *stub);
  if (args.command == "kick") {
    // Kick may ask every member in turn (3 s each) after the registry's holder.
    SetDeadline(&ctx, std::chrono::seconds(30));
    return Kick(args, *stub, &ctx);
  }
  return Status(args, *stub, &ctx);
}
