// SPDX-License-Identifier: Apache-2.0
#include "node/http/server.h"

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/write.hpp"
#include "gtest/gtest.h"
#include "node/base/host_port.h"
#include "node/http/health.h"

namespace mqtt::http {
namespace {

using boost::asio::ip::tcp;

Handlers OkHandlers() {
  Handlers h;
  h["/ok"] = [] { return TextResponse(200, "fine\n"); };
  h["/throws"] = []() -> Response { throw std::runtime_error("boom"); };
  return h;
}

TEST(DispatchTest, KnownPathGetsTheHandlersAnswer) {
  Response r = Dispatch(OkHandlers(), "GET", "/ok");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "fine\n");
}

TEST(DispatchTest, QueryStringIsIgnored) {
  EXPECT_EQ(Dispatch(OkHandlers(), "GET", "/ok?verbose=1").status, 200);
}

TEST(DispatchTest, UnknownPathIs404WhateverTheMethod) {
  EXPECT_EQ(Dispatch(OkHandlers(), "GET", "/nope").status, 404);
  EXPECT_EQ(Dispatch(OkHandlers(), "POST", "/nope").status, 404);
  EXPECT_EQ(Dispatch(OkHandlers(), "GET", "/ok/").status, 404);
}

TEST(DispatchTest, OtherMethodsAre405WithAllowGet) {
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD", "BREW"}) {
    Response r = Dispatch(OkHandlers(), method, "/ok");
    EXPECT_EQ(r.status, 405) << method;
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "Allow");
    EXPECT_EQ(r.headers[0].second, "GET");
  }
}

TEST(DispatchTest, ThrowingHandlerIs500) {
  EXPECT_EQ(Dispatch(OkHandlers(), "GET", "/throws").status, 500);
}

TEST(ReadinessTest, ReasonsInOrder) {
  bool storage = false;
  std::string cluster = "not joined";
  Readiness r({[&] { return storage; }, [&] { return cluster; }});
  EXPECT_EQ(r.NotReadyReason(), "storage not open");
  storage = true;
  EXPECT_EQ(r.NotReadyReason(), "listeners not up");
  r.SetListening(true);
  EXPECT_EQ(r.NotReadyReason(), "cluster: not joined");
  EXPECT_EQ(r.Readyz().status, 503);
  EXPECT_EQ(r.Readyz().body, "cluster: not joined\n");
  cluster.clear();
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.Readyz().status, 200);
  r.SetShuttingDown();
  EXPECT_EQ(r.Readyz().status, 503);
  EXPECT_EQ(r.Readyz().body, "shutting down\n");
  EXPECT_EQ(r.Healthz().status, 200);
}

TEST(ReadinessTest, WithoutChecksOnlyListenersMatter) {
  Readiness r({});
  EXPECT_FALSE(r.ready());
  r.SetListening(true);
  EXPECT_TRUE(r.ready());
}

// A blocking client on its own io_context.
class Client {
 public:
  explicit Client(const std::string& address) : socket_(io_) {
    const HostPort server = ParseHostPort(address).value();
    socket_.connect(tcp::endpoint(boost::asio::ip::make_address(server.host), server.port));
  }
  void Send(const std::string& bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }
  // Everything until the server closes.
  std::string ReadAll() {
    std::string out;
    boost::system::error_code ec;
    boost::asio::read(socket_, boost::asio::dynamic_buffer(out), ec);
    return out;
  }

 private:
  boost::asio::io_context io_;
  tcp::socket socket_;
};

std::string Get(const std::string& address, const std::string& target) {
  Client c(address);
  c.Send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
  return c.ReadAll();
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    auto server = Server::Start(options, OkHandlers());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, PortZeroReportsTheBoundPort) {
  StartServer();
  EXPECT_EQ(server_->address().rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(server_->address(), "127.0.0.1:0");
}

TEST_F(ServerTest, AnswersGetAndCloses) {
  StartServer();
  const std::string answer = Get(server_->address(), "/ok");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Content-Length: 5\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.substr(answer.size() - 5), "fine\n");
}

TEST_F(ServerTest, NotFoundAndMethodNotAllowed) {
  StartServer();
  EXPECT_EQ(Get(server_->address(), "/missing").rfind("HTTP/1.1 404 ", 0), 0u);
  Client c(server_->address());
  c.Send("POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
  const std::string answer = c.ReadAll();
  EXPECT_EQ(answer.rfind("HTTP/1.1 405 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("Allow: GET\r\n"), std::string::npos) << answer;
}

TEST_F(ServerTest, GarbageGets400AndTheServerGoesOn) {
  StartServer();
  Client c(server_->address());
  c.Send("\x01\x02 garbage garbage\r\n\r\n");
  EXPECT_EQ(c.ReadAll().rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(Get(server_->address(), "/ok").rfind("HTTP/1.1 200 ", 0), 0u);
}

TEST_F(ServerTest, OversizedHeaderGets431) {
  ServerOptions options;
  options.max_request_bytes = 1024;
  StartServer(options);
  Client c(server_->address());
  c.Send("GET /ok HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  EXPECT_EQ(c.ReadAll().rfind("HTTP/1.1 431 ", 0), 0u);
}

TEST_F(ServerTest, OversizedBodyGets413) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  StartServer(options);
  Client c(server_->address());
  c.Send("GET /ok HTTP/1.1\r\nContent-Length: 4096\r\n\r\n" + std::string(4096, 'a'));
  EXPECT_EQ(c.ReadAll().rfind("HTTP/1.1 413 ", 0), 0u);
}

TEST_F(ServerTest, SlowClientDoesNotBlockOthersAndIsDropped) {
  ServerOptions options;
  options.timeout = std::chrono::milliseconds(300);
  StartServer(options);
  Client slow(server_->address());
  slow.Send("GET /ok HTTP/1.1\r\n");  // and never the rest
  EXPECT_EQ(Get(server_->address(), "/ok").rfind("HTTP/1.1 200 ", 0), 0u);
  EXPECT_EQ(slow.ReadAll(), "");  // closed after the timeout, without an answer
}

TEST_F(ServerTest, ConnectionsPastTheLimitAreClosed) {
  ServerOptions options;
  options.max_connections = 1;
  options.timeout = std::chrono::milliseconds(2000);
  StartServer(options);
  Client idle(server_->address());
  idle.Send("G");
  // The idle one was accepted first (the backlog is FIFO) and holds the only slot.
  EXPECT_EQ(Get(server_->address(), "/ok"), "");
}

TEST_F(ServerTest, BadListenAddresses) {
  ServerOptions options;
  options.listen = "not-an-ip:80";
  EXPECT_EQ(Server::Start(options, {}).status().code(), absl::StatusCode::kInvalidArgument);
  options.listen = "127.0.0.1";
  EXPECT_EQ(Server::Start(options, {}).status().code(), absl::StatusCode::kInvalidArgument);
  StartServer();
  options.listen = server_->address();
  EXPECT_EQ(Server::Start(options, {}).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ServerTest, StopIsIdempotentWithOpenConnections) {
  StartServer();
  Client idle(server_->address());
  server_->Stop();
  server_->Stop();
  server_.reset();
  EXPECT_EQ(idle.ReadAll(), "");
}

// An API handler that answers later, from another thread, as the HTTP API does with workers.
class ApiServerTest : public ::testing::Test {
 protected:
  void StartServer() {
    auto api = [this](Request request, Respond respond) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
      pending_.push_back(std::move(respond));
      cv_.notify_all();
    };
    auto server = Server::Start(ServerOptions{}, OkHandlers(), api);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  Respond WaitForRequest() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !pending_.empty(); });
    Respond r = std::move(pending_.front());
    pending_.erase(pending_.begin());
    return r;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
  std::vector<Respond> pending_;
  std::unique_ptr<Server> server_;
};

TEST_F(ApiServerTest, AnswerFromAnotherThreadReachesTheClient) {
  StartServer();
  Client c(server_->address());
  c.Send(
      "POST /api/v1/x?y=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
      "Content-Length: 2\r\n\r\nhi");
  Respond respond = WaitForRequest();
  std::thread([respond] { respond(Response{201, "{}", "application/json", {}}); }).join();
  const std::string answer = c.ReadAll();
  EXPECT_EQ(answer.rfind("HTTP/1.1 201 ", 0), 0u) << answer;
  EXPECT_NE(answer.find("Content-Type: application/json"), std::string::npos) << answer;
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].method, "POST");
  EXPECT_EQ(requests_[0].target, "/api/v1/x?y=1");
  EXPECT_EQ(requests_[0].body, "hi");
  EXPECT_EQ(requests_[0].authorization, "Bearer k");
}

TEST_F(ApiServerTest, OtherPathsStillGoToTheHandlers) {
  StartServer();
  EXPECT_EQ(Get(server_->address(), "/ok").rfind("HTTP/1.1 200 ", 0), 0u);
  EXPECT_EQ(Get(server_->address(), "/apix").rfind("HTTP/1.1 404 ", 0), 0u);
}

TEST_F(ApiServerTest, AnswerAfterTheServerIsGoneIsDropped) {
  StartServer();
  Client c(server_->address());
  c.Send("GET /api/v1/slow HTTP/1.1\r\nHost: x\r\n\r\n");
  Respond respond = WaitForRequest();
  server_.reset();                       // Stop() and destroy, with the request unanswered
  respond(TextResponse(200, "late\n"));  // must not touch the freed server (ASan)
  EXPECT_EQ(c.ReadAll(), "");
}

}  // namespace
}  // namespace mqtt::http
