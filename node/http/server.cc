// SPDX-License-Identifier: Apache-2.0
#include "node/http/server.h"

#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "node/base/host_port.h"
#include "node/base/log.h"

namespace mqtt::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

// The answer to a request that did not parse, or nullopt to close without one (the client went
// away or timed out: nobody reads an answer).
std::optional<Response> ErrorResponse(const beast::error_code& ec) {
  if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
      ec == asio::error::eof) {
    return std::nullopt;
  }
  if (ec == bhttp::error::body_limit) return TextResponse(413, "request body too large\n");
  if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
    return TextResponse(431, "request header too large\n");
  }
  return TextResponse(400, "bad request\n");
}

}  // namespace

Response TextResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Dispatch(const Handlers& handlers, std::string_view method, std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  auto it = handlers.find(path);
  if (it == handlers.end()) return TextResponse(404, "not found\n");
  if (method != "GET") {
    Response r = TextResponse(405, "method not allowed\n");
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  try {  // a handler's library may throw (prometheus-cpp does): the error stays in this answer
    return it->second();
  } catch (const std::exception& e) {
    MQTT_LOG_WARN("http: %s: %s", std::string(path), e.what());
    return TextResponse(500, "internal error\n");
  }
}

// Where API answers from other threads go: the server's io_context until Stop(), then nowhere.
// Shared with every Respond, so that a worker answering after the server is gone drops it.
struct ResponseGate {
  std::mutex mu;
  asio::io_context* io = nullptr;  // guarded by mu
};

struct Server::Impl {
  // Declared before io: connections destroyed with the io_context's pending handlers use them.
  ServerOptions options;
  Handlers handlers;
  ApiHandler api;
  size_t open_connections = 0;  // the server thread's
  std::shared_ptr<ResponseGate> gate = std::make_shared<ResponseGate>();
  asio::io_context io{1};
  // Connections whose API answer is pending, by address (the server thread's). After io: they
  // go first, while the io_context their sockets use still exists.
  std::map<const void*, std::shared_ptr<void>> awaiting;
  tcp::acceptor acceptor{io};
  std::string address;
  std::thread thread;
  bool stopped = false;

  void AcceptNext();
};

namespace {

// One connection: read one request, write one response, close. Owned by its pending handler.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, Server::Impl* server)
      : server_(server),
        stream_(std::move(socket)),
        buffer_(server->options.max_request_bytes + server->options.max_body_bytes) {
    ++server_->open_connections;
  }
  ~Connection() { --server_->open_connections; }

  void Start() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_request_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    stream_.expires_after(server_->options.timeout);
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(const beast::error_code& ec) {
    if (ec) {
      if (std::optional<Response> r = ErrorResponse(ec)) Write(*r);
      return;  // else: the last reference goes with this handler, closing the socket
    }
    auto& request = parser_->get();
    const auto method = request.method_string();
    const auto target = request.target();
    const std::string_view path(target.data(), target.size());
    if (server_->api && path.starts_with(server_->options.api_prefix)) {
      ToApi(request);
      return;
    }
    Write(Dispatch(server_->handlers, std::string_view(method.data(), method.size()),
                   std::string_view(target.data(), target.size())));
  }

  // The answer comes back on the server's thread, whichever thread responds.
  void ToApi(bhttp::request<bhttp::string_body>& request) {
    Request r;
    r.method = std::string(request.method_string());
    r.target = std::string(request.target());
    r.body = std::move(request.body());
    if (auto it = request.find(bhttp::field::authorization); it != request.end()) {
      r.authorization = std::string(it->value());
    }
    server_->awaiting[this] = shared_from_this();
    // Holds the connection weakly: an answer that comes after Stop() keeps nothing alive.
    Respond respond = [gate = server_->gate, weak = weak_from_this()](Response response) {
      std::lock_guard<std::mutex> lock(gate->mu);
      if (gate->io == nullptr) return;
      asio::post(*gate->io, [weak, response = std::move(response)] {
        if (auto self = weak.lock()) {
          self->server_->awaiting.erase(self.get());
          self->Write(response);
        }
      });
    };
    try {
      server_->api(std::move(r), std::move(respond));
    } catch (const std::exception& e) {  // nothing may escape to the io_context
      MQTT_LOG_WARN("http: api: %s", e.what());
      server_->awaiting.erase(this);
      Write(TextResponse(500, "internal error\n"));
    }
  }

  void Write(const Response& r) {
    response_.result(static_cast<unsigned>(r.status));
    response_.version(11);
    response_.set(bhttp::field::server, "mqttd");
    response_.set(bhttp::field::content_type, r.content_type);
    response_.set(bhttp::field::connection, "close");
    for (const auto& [name, value] : r.headers)
      response_.insert(name, value);  // insert: a field may repeat (WWW-Authenticate)
    response_.body() = r.body;
    response_.prepare_payload();
    stream_.expires_after(server_->options.timeout);
    bhttp::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  Server::Impl* const server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
};

}  // namespace

void Server::Impl::AcceptNext() {
  acceptor.async_accept([this](const beast::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (open_connections >= options.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);  // full: this one is refused, the open ones go on
      } else {
        std::make_shared<Connection>(std::move(socket), this)->Start();
      }
    } else {
      MQTT_LOG_WARN("http: accept on %s: %s", address, ec.message());
    }
    AcceptNext();
  });
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      Handlers handlers, ApiHandler api) {
  // An empty host gets to make_address, which refuses it as a bad address.
  absl::StatusOr<HostPort> listen =
      ParseHostPort(options.listen, {.allow_empty_host = true, .allow_port_zero = true});
  if (!listen.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("http: '", options.listen, "' is not HOST:PORT"));
  }
  beast::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(listen->host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("http: bad address '", listen->host, "'"));
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handlers = std::move(handlers);
  impl->api = std::move(api);
  const tcp::endpoint endpoint(ip, listen->port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("http: listen on ", options.listen, ": ", ec.message()));
  }
  const uint16_t bound = impl->acceptor.local_endpoint(ec).port();
  impl->address = JoinHostPort(listen->host, bound);
  Impl* raw = impl.get();
  raw->gate->io = &raw->io;  // no other thread has the gate yet
  raw->AcceptNext();
  raw->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->io.stop();
  impl_->thread.join();
  {
    std::lock_guard<std::mutex> lock(impl_->gate->mu);
    impl_->gate->io = nullptr;  // later answers are dropped
  }
  beast::error_code ignored;
  impl_->acceptor.close(ignored);  // the thread is gone: nothing else touches it now
  // Open connections are dropped with the io_context's pending handlers (~Impl).
}

const std::string& Server::address() const { return impl_->address; }

}  // namespace mqtt::http
