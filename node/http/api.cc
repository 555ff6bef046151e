// SPDX-License-Identifier: Apache-2.0
#include "node/http/api.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "node/http/api_publish.h"
#include "node/protocol/reason_codes.h"
#include "node/protocol/utf8.h"

namespace mqtt::http {
namespace {

using json = nlohmann::json;
constexpr size_t kDefaultLimit = 1000;

Response JsonResponse(int status, const json& body) {
  return Response{status, body.dump() + "\n", "application/json", {}};
}

// The target's path, URL-decoded (%XX), and its `limit` query parameter (kDefaultLimit).
struct Target {
  std::string path;
  size_t limit = kDefaultLimit;
  bool ok = true;
};

bool PercentDecode(absl::string_view in, std::string* out) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    int value = 0;
    if (i + 2 >= in.size() || !absl::SimpleHexAtoi(in.substr(i + 1, 2), &value)) return false;
    out->push_back(static_cast<char>(value));
    i += 2;
  }
  return true;
}

Target ParseTarget(const std::string& target) {
  Target t;
  const size_t q = target.find('?');
  t.ok = PercentDecode(absl::string_view(target).substr(0, q), &t.path);
  if (q == std::string::npos) return t;
  for (absl::string_view pair : absl::StrSplit(absl::string_view(target).substr(q + 1), '&')) {
    if (absl::StartsWith(pair, "limit=") && !absl::SimpleAtoi(pair.substr(6), &t.limit)) {
      t.ok = false;
    }
  }
  return t;
}

json SessionJson(const SessionInfo& s) {
  return {{"client_id", s.client_id},
          {"connected", s.connected},
          {"protocol_version", s.protocol_level == 5   ? "5.0"
                               : s.protocol_level == 4 ? "3.1.1"
                                                       : "3.1"},
          {"persistent", s.persistent},
          {"subscriptions", s.subscriptions},
          {"inflight", s.inflight},
          {"queued", s.queued},
          {"expiry_interval", s.expiry_interval}};
}

// A payload as text when it is UTF-8, else as base64.
void AddPayload(const std::string& payload, json* out) {
  if (IsValidMqttUtf8(payload)) {
    (*out)["payload"] = payload;
  } else {
    (*out)["payload_base64"] = absl::Base64Escape(payload);
  }
}

// The answer to a QoS 1/2 publish, once its AckToken is released (the message is durable).
// Keeps itself alive until then (the token holds it weakly). A token cancelled by a storage
// failure never calls back: the node is stopping, and the request gets no answer.
class PublishAck final : public AckListener {
 public:
  static std::shared_ptr<PublishAck> Make(Respond respond, json answer) {
    auto ack = std::shared_ptr<PublishAck>(new PublishAck(std::move(respond), std::move(answer)));
    ack->self_ = ack;
    return ack;
  }
  void OnDurable(uint64_t) override {
    respond_(JsonResponse(200, answer_));
    self_.reset();  // last: may destroy this
  }

 private:
  PublishAck(Respond respond, json answer)
      : respond_(std::move(respond)), answer_(std::move(answer)) {}
  Respond respond_;
  json answer_;
  std::shared_ptr<PublishAck> self_;
};

class Api {
 public:
  Api(Broker* broker, cluster::ClusterNode* cluster, ApiAuth auth)
      : broker_(broker), cluster_(cluster), auth_(std::move(auth)) {}

  void Handle(const Request& request, const Respond& respond) {
    if (!auth_.enabled()) {
      respond(JsonError(404,
                        "the HTTP API is disabled: start mqttd with --http-api-key-file or "
                        "--http-basic-auth-file"));
      return;
    }
    if (!AuthorizedRequest(auth_, request.authorization)) return respond(Unauthorized());
    const Target target = ParseTarget(request.target);
    if (!target.ok) {
      respond(JsonError(400, "bad path or query"));
      return;
    }
    Route(request, target, respond);
  }

 private:
  void Route(const Request& request, const Target& target, const Respond& respond) {
    const std::string_view path = target.path;
    const std::string& method = request.method;
    if (path == "/api/v1/publish") {
      if (method != "POST") return respond(MethodNotAllowed("POST"));
      return Publish(request.body, respond);
    }
    if (path == "/api/v1/clients") {
      if (method != "GET") return respond(MethodNotAllowed("GET"));
      return ListClients(target.limit, respond);
    }
    if (path.starts_with("/api/v1/clients/") && path.size() > 16) {
      std::string id(path.substr(16));
      if (method == "GET") return GetClient(std::move(id), respond);
      if (method == "DELETE") return KickClient(std::move(id), respond);
      return respond(MethodNotAllowed("GET, DELETE"));
    }
    if (path == "/api/v1/subscriptions" || path == "/api/v1/retained" ||
        path == "/api/v1/cluster/members") {
      if (method != "GET") return respond(MethodNotAllowed("GET"));
      if (path == "/api/v1/subscriptions") return ListSubscriptions(target.limit, respond);
      if (path == "/api/v1/retained") return respond(ListRetained(target.limit));
      return respond(ListMembers());
    }
    respond(JsonError(404, absl::StrCat("no such API path: ", std::string(path))));
  }

  // 401 with one WWW-Authenticate field per scheme accepted (RFC 9110 11.6.1).
  Response Unauthorized() const {
    const bool bearer = !auth_.keys.empty();
    const bool basic = auth_.users != nullptr && auth_.users->size() > 0;
    std::vector<std::string> wanted;
    if (bearer) wanted.push_back("an API key (Authorization: Bearer KEY)");
    if (basic) wanted.push_back("a user's password (Authorization: Basic base64(USER:PASSWORD))");
    Response r = JsonError(
        401, absl::StrCat("missing or wrong credentials: ", absl::StrJoin(wanted, " or ")));
    if (bearer) r.headers.emplace_back("WWW-Authenticate", "Bearer");
    if (basic)
      r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"mqttd\", charset=\"UTF-8\"");
    return r;
  }

  static Response MethodNotAllowed(std::string allow) {
    Response r = JsonError(405, absl::StrCat("method not allowed; allowed: ", allow));
    r.headers.emplace_back("Allow", std::move(allow));
    return r;
  }

  // Posted to the next worker in turn, which publishes as a client's PUBLISH would.
  void Publish(const std::string& body, const Respond& respond) {
    absl::StatusOr<std::shared_ptr<Message>> message = ParsePublishRequest(body);
    if (!message.ok()) return respond(JsonError(400, std::string(message.status().message())));
    if (broker_->shutting_down()) return respond(JsonError(503, "the node is shutting down"));
    const uint32_t worker = next_worker_++ % broker_->worker_count();
    Broker* broker = broker_;
    broker->shard(worker).worker()->Post([broker, worker, message = MessagePtr(std::move(*message)),
                                          respond] {
      json answer = {{"topic", message->topic}, {"qos", message->qos}, {"retain", message->retain}};
      if (message->qos == 0) {
        broker->Publish(worker, message, nullptr);
        respond(JsonResponse(200, answer));
        return;
      }
      // Released on whichever thread makes the message durable last (executor null).
      auto token = std::make_shared<AckToken>(nullptr, PublishAck::Make(respond, answer), 0);
      broker->Publish(worker, message, std::move(token));
    });
  }

  // Every worker's sessions, gathered as each answers; the last one to answer responds.
  void ListClients(size_t limit, const Respond& respond) {
    struct Gather {
      absl::Mutex mu;
      size_t left;
      std::vector<SessionInfo> sessions;
    };
    auto gather = std::make_shared<Gather>();
    gather->left = broker_->worker_count();
    for (uint32_t i = 0; i < broker_->worker_count(); ++i) {
      Shard* shard = &broker_->shard(i);
      shard->worker()->Post([shard, gather, limit, respond] {
        std::vector<SessionInfo> part = shard->ListSessions(SessionFilter{"", limit});
        absl::MutexLock lock(&gather->mu);
        gather->sessions.insert(gather->sessions.end(), part.begin(), part.end());
        if (--gather->left > 0) return;
        std::sort(
            gather->sessions.begin(), gather->sessions.end(),
            [](const SessionInfo& a, const SessionInfo& b) { return a.client_id < b.client_id; });
        if (limit != 0 && gather->sessions.size() > limit) gather->sessions.resize(limit);
        json list = json::array();
        for (const SessionInfo& s : gather->sessions) list.push_back(SessionJson(s));
        respond(JsonResponse(200, {{"clients", std::move(list)}}));
      });
    }
  }

  void GetClient(std::string id, const Respond& respond) {
    Shard* home = &broker_->shard(broker_->HomeWorker(id));
    home->worker()->Post([home, id = std::move(id), respond] {
      std::vector<SessionInfo> found = home->ListSessions(SessionFilter{id, 1});
      if (found.empty()) return respond(JsonError(404, absl::StrCat("no session of client ", id)));
      respond(JsonResponse(200, SessionJson(found[0])));
    });
  }

  // As `mqttctl kick`: 5.0 clients get DISCONNECT 0x98 (Administrative action).
  void KickClient(std::string id, const Respond& respond) {
    Shard* home = &broker_->shard(broker_->HomeWorker(id));
    home->worker()->Post([home, id = std::move(id), respond] {
      if (!home->Kick(id, rc::kAdministrativeAction)) {
        return respond(
            JsonError(404, absl::StrCat("client ", id, " is not connected to this node")));
      }
      respond(JsonResponse(200, {{"kicked", id}}));
    });
  }

  void ListSubscriptions(size_t limit, const Respond& respond) {
    struct Gather {
      absl::Mutex mu;
      size_t left;
      json list = json::array();
    };
    auto gather = std::make_shared<Gather>();
    gather->left = broker_->worker_count();
    for (uint32_t i = 0; i < broker_->worker_count(); ++i) {
      Shard* shard = &broker_->shard(i);
      shard->worker()->Post([shard, gather, limit, respond] {
        json part = json::array();
        shard->ForEachSession([&part](Session& session) {
          for (const auto& [filter, o] : session.subscriptions()) {
            part.push_back({{"client_id", session.client_id()},
                            {"filter", filter},
                            {"qos", o.qos},
                            {"no_local", o.no_local},
                            {"retain_as_published", o.retain_as_published},
                            {"retain_handling", o.retain_handling},
                            {"subscription_id", o.subscription_id}});
          }
        });
        absl::MutexLock lock(&gather->mu);
        for (json& s : part) gather->list.push_back(std::move(s));
        if (--gather->left > 0) return;
        SortAndLimit(&gather->list, limit);
        respond(JsonResponse(200, {{"subscriptions", std::move(gather->list)}}));
      });
    }
  }

  static void SortAndLimit(json* list, size_t limit) {
    std::sort(list->begin(), list->end(), [](const json& a, const json& b) {
      return std::tie(a["client_id"], a["filter"]) < std::tie(b["client_id"], b["filter"]);
    });
    if (limit != 0 && list->size() > limit) list->erase(list->begin() + limit, list->end());
  }

  // The router is thread-safe: read here. '$' topics are not under '#' [MQTT-4.7.2-1], so
  // $SYS is not listed.
  Response ListRetained(size_t limit) {
    std::vector<MessagePtr> messages = broker_->router().RetainedMatching("#");
    std::sort(messages.begin(), messages.end(),
              [](const MessagePtr& a, const MessagePtr& b) { return a->topic < b->topic; });
    json list = json::array();
    for (const MessagePtr& m : messages) {
      if (limit != 0 && list.size() >= limit) break;
      json item = {{"topic", m->topic}, {"qos", m->qos}};
      AddPayload(m->payload, &item);
      list.push_back(std::move(item));
    }
    return JsonResponse(200, {{"retained", std::move(list)}});
  }

  Response ListMembers() {
    if (cluster_ == nullptr) return JsonError(404, "this node is not clustered");
    json list = json::array();
    for (const cluster::MemberInfo& m : cluster_->membership().Members()) {
      list.push_back({{"node_id", m.node_id},
                      {"address", m.address},
                      {"state", cluster::MemberStateName(m.state)},
                      {"incarnation", m.incarnation}});
    }
    return JsonResponse(200, {{"members", std::move(list)}});
  }

  Broker* const broker_;
  cluster::ClusterNode* const cluster_;
  const ApiAuth auth_;
  uint32_t next_worker_ = 0;  // the HTTP thread's
};

}  // namespace

Response JsonError(int status, const std::string& message) {
  return JsonResponse(status, {{"error", message}});
}

absl::StatusOr<std::vector<std::string>> ReadApiKeys(const std::string& file) {
  std::ifstream in(file);
  if (!in)
    return absl::NotFoundError(absl::StrCat("http: cannot read the API key file '", file, "'"));
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view key = absl::StripAsciiWhitespace(line);
    if (!key.empty() && key.front() != '#') keys.emplace_back(key);
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("http: the API key file '", file, "' holds no key"));
  }
  return keys;
}

bool Authorized(const std::vector<std::string>& keys, absl::string_view authorization) {
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWith(authorization, kBearer)) return false;
  const absl::string_view given = absl::StripAsciiWhitespace(authorization.substr(kBearer.size()));
  bool match = false;
  for (const std::string& key : keys) {
    if (key.size() != given.size()) continue;
    unsigned char diff = 0;
    for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(key[i] ^ given[i]);
    match |= diff == 0;
  }
  return match;
}

bool AuthorizedRequest(const ApiAuth& auth, absl::string_view authorization) {
  constexpr absl::string_view kBasic = "Basic ";
  if (!absl::StartsWith(authorization, kBasic)) return Authorized(auth.keys, authorization);
  if (auth.users == nullptr) return false;
  std::string credentials;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(authorization.substr(kBasic.size())),
                            &credentials)) {
    return false;
  }
  const size_t colon = credentials.find(':');
  if (colon == std::string::npos) return false;
  const std::string_view both = credentials;
  return auth.users->Check(both.substr(0, colon), both.substr(colon + 1));
}

ApiHandler MakeApi(Broker* broker, cluster::ClusterNode* cluster, ApiAuth auth) {
  auto api = std::make_shared<Api>(broker, cluster, std::move(auth));
  return [api](Request request, Respond respond) { api->Handle(request, respond); };
}

}  // namespace mqtt::http
