// mqttctl: the admin CLI of an mqttd cluster. Talks to one node's admin gRPC service
// (proto/admin.proto) on its cluster port and prints what that node sees.
//
//   mqttctl [--server HOST:PORT] [--json] members
//   mqttctl [--server HOST:PORT] [--json] routes [--node ID] [--filter F]
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
  members                      the cluster's members as the node sees them
  routes [--node ID] [--filter F]
                               the route table: which node's subscribers hold which filter

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
    } else if (args.command.empty() && !arg.starts_with("-")) {
      args.command = std::string(arg);
    } else {
      Usage(absl::StrCat("unexpected argument '", std::string(arg), "'"));
    }
  }
  if (args.command != "members" && args.command != "routes") {
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

int Members(const Args& args, mqtt::admin::v1::Admin::Stub& stub, grpc::ClientContext* ctx) {
  mqtt::admin::v1::MembersResponse response;
  grpc::Status status = stub.Members(ctx, {}, &response);
  if (!status.ok()) return Fail(args, status);
  if (args.json) {
    PrintJson(response);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "ADDRESS", "STATE", "INCARNATION", "UPTIME"}};
  for (const auto& m : response.members()) {
    rows.push_back({m.node_id(), m.address(), m.state(), std::to_string(m.incarnation()),
                    m.started_at_unix_ms() > 0 ? Age(m.started_at_unix_ms()) : "-"});
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
  auto channel = grpc::CreateChannel(args.server, grpc::InsecureChannelCredentials());
  auto stub = mqtt::admin::v1::Admin::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return args.command == "members" ? Members(args, *stub, &ctx) : Routes(args, *stub, &ctx);
}
