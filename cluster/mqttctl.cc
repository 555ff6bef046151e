// SPDX-License-Identifier: Apache-2.0
// mqttctl: the admin CLI of an mqttd cluster. Talks to one node's admin gRPC service
// (proto/admin.proto) on its cluster port and prints what that node sees.
//
//   mqttctl [--server HOST:PORT] [--json] members
//   mqttctl [--server HOST:PORT] [--json] routes [--node ID] [--filter F]
//   mqttctl [--server HOST:PORT] [--json] retained [--topic F]
//   mqttctl [--server HOST:PORT] [--json] status
//
// Exit status: 0 ok, 1 the node could not be reached or answered with an error, 2 usage.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
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

options:
  --server HOST:PORT   the node's cluster address (its --cluster-listen) [127.0.0.1:7946]
  --json               print the node's answer as JSON instead of a table
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
    } else if (arg == "--node") {
      args.node = value();
    } else if (arg == "--filter") {
      args.filter = value();
    } else if (arg == "--topic") {
      args.topic = value();
    } else if (args.command.empty() && !arg.starts_with("-")) {
      args.command = std::string(arg);
    } else {
      Usage(absl::StrCat("unexpected argument '", std::string(arg), "'"));
    }
  }
  if (args.command != "members" && args.command != "routes" && args.command != "retained" &&
      args.command != "status") {
    Usage(args.command.empty() ? "no command"
                               : absl::StrCat("unknown command '", args.command, "'"));
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

std::unique_ptr<mqtt::admin::v1::Admin::Stub> Connect(const std::string& address) {
  return mqtt::admin::v1::Admin::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
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

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  auto stub = Connect(args.server);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, std::chrono::seconds(5));
  if (args.command == "members") return Members(args, *stub, &ctx);
  if (args.command == "routes") return Routes(args, *stub, &ctx);
  if (args.command == "retained") return Retained(args, *stub, &ctx);
  return Status(args, *stub, &ctx);
}
