// SPDX-License-Identifier: Apache-2.0
// A small HTTP/1.1 server for operations endpoints (/healthz, /readyz, /metrics) and the HTTP API
// (/api/...), on Boost.Beast.
//
// Contract: handlers are registered by exact path before Start() and never change after. A GET
// of a registered path (query string ignored) gets the handler's response; any other method on
// it gets 405 with "Allow: GET". A request whose path starts with `api_prefix` (any method) goes
// to `api` with its body and Authorization header, and is answered when `api` calls its
// Respond, from any thread. Any other path gets 404; a request that does not parse gets
// 400, one whose header exceeds max_request_bytes 431, whose body exceeds it 413. One request
// per connection ("Connection: close"). A client that sends nothing, or too slowly, is dropped
// after `timeout`; past `max_connections` open connections new ones are closed at once. A bad or
// slow client only ever affects its own connection.
//
// Threading: the server runs its own thread and io_context (never a broker worker: a scrape
// cannot stall MQTT traffic). Handlers run on that thread, one at a time, and must be safe to
// call from it; `api` must not block it (it posts its work elsewhere and responds later).
// Respond may be called from any thread, at most once, even after Stop() or the Server's
// destruction (the answer is then dropped). Start() and Stop() from any other thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace mqtt::http {

struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra header fields
};

// A text/plain response.
Response TextResponse(int status, std::string body);

using Handler = std::function<Response()>;
using Handlers = std::map<std::string, Handler, std::less<>>;  // by path, "/metrics"

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string body;
  std::string authorization;  // the Authorization header field's value; empty when absent
};
using Respond = std::function<void(Response)>;
using ApiHandler = std::function<void(Request request, Respond respond)>;

struct ServerOptions {
  std::string listen = "127.0.0.1:0";       // HOST:PORT, HOST an IP address ([v6] allowed); port 0:
                                            // a free port (address() tells which)
  size_t max_request_bytes = 8192;          // request line + header fields
  size_t max_body_bytes = 8192;             // request body
  std::string api_prefix = "/api/";         // paths that go to the ApiHandler, if one is given
  std::chrono::milliseconds timeout{5000};  // to read a request, and to write the response
  size_t max_connections = 64;
};

// The response to `method` `target` (pure; what the server does once a request parsed).
Response Dispatch(const Handlers& handlers, std::string_view method, std::string_view target);

class Server {
 public:
  // Binds, listens and starts the thread. Errors: InvalidArgument for a bad listen address,
  // Unavailable (naming the address) when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       Handlers handlers, ApiHandler api = nullptr);
  ~Server();  // Stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting, drops open connections and joins the thread. Idempotent.
  void Stop();
  // HOST:PORT bound, with the real port ("[::1]:8080" for IPv6).
  const std::string& address() const;

 public:
  struct Impl;  // server.cc

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mqtt::http
