// SPDX-License-Identifier: Apache-2.0
// The HTTP API of one node, under /api/v1/ (docs/http-api.yaml is its OpenAPI description):
// publish, list/show/kick clients, list subscriptions and retained messages, cluster members.
//
// Contract: every answer is JSON; an error is {"error": "..."} with its status code (400 bad
// request, 401 no or wrong key, 404 unknown path or client, 405 wrong method, 503 the node
// cannot do it now). With neither API keys nor basic-auth users the API is disabled: every
// /api/ path answers 404 with an error saying so. A request is authorised by
// "Authorization: Bearer KEY" with KEY one of the keys, or by "Authorization: Basic
// base64(USER:PASSWORD)" (RFC 7617) with USER and PASSWORD in the password file (Mosquitto's
// format, node/auth/password_file.h); else 401 with a WWW-Authenticate field per scheme on. A QoS
// 1/2 publish is answered once the message is durable wherever it must be (the broker's AckToken,
// router/ack_token.h), as a client's PUBACK would be; QoS 0 once routed. HTTP has no exactly-once
// handshake: a retried QoS 2 request may publish twice.
//
// Threading: the handler runs on the HTTP server's thread and never touches shard state there:
// session queries, kicks and publishes are posted to the workers, and the answer is sent when
// the last of them is done. Router and membership reads (thread-safe) run on the HTTP thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/node.h"
#include "node/auth/password_file.h"
#include "node/http/server.h"
#include "node/session/broker.h"

namespace mqtt::http {

// The keys of an API key file: one per line; blank lines and lines starting with '#' skipped,
// surrounding white space trimmed. Errors: NotFound/PermissionDenied naming the file when it
// cannot be read, InvalidArgument when it holds no key.
absl::StatusOr<std::vector<std::string>> ReadApiKeys(const std::string& file);

// Who may use the API: Bearer keys and basic-auth users (null: none). Both empty: disabled.
struct ApiAuth {
  std::vector<std::string> keys;
  std::shared_ptr<const auth::PasswordFile> users;
  bool enabled() const { return !keys.empty() || (users != nullptr && users->size() > 0); }
};

// True when `authorization` is "Bearer KEY" with KEY in `keys` (compared in constant time).
bool Authorized(const std::vector<std::string>& keys, absl::string_view authorization);
// True when `authorization` is "Bearer KEY" with KEY in `auth.keys`, or "Basic CREDENTIALS"
// whose base64 decodes to USER:PASSWORD (the first ':' splits) that `auth.users` accepts
// (PasswordFile::Check: constant time, an unknown user costs as much as a known one).
bool AuthorizedRequest(const ApiAuth& auth, absl::string_view authorization);

// The API over `broker` and `cluster` (null: not clustered). `auth` not enabled(): disabled.
ApiHandler MakeApi(Broker* broker, cluster::ClusterNode* cluster, ApiAuth auth);

// A JSON error body {"error": message} with `status`.
Response JsonError(int status, const std::string& message);

}  // namespace mqtt::http
