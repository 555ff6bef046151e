// SPDX-License-Identifier: Apache-2.0
// The bridge's state machine (bridge.h): connect the remote (resolve, TCP, TLS, CONNECT,
// SUBSCRIBE), then the local session over a socket pair (CONNECT, SUBSCRIBE), then relay; on any
// failure close both and reconnect after a backoff. Everything runs on the bridge's worker.
#include "node/bridge/bridge.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/steady_timer.hpp"
#include "node/base/log.h"
#include "node/bridge/link.h"
#include "node/net/tcp_transport.h"
#include "node/router/topic.h"

namespace mqtt::bridge {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Ids = absl::flat_hash_map<uint16_t, uint16_t>;

// One direction of the relay: PUBLISHes arrive on link `from` and leave on link `to` with ids of
// `to`'s own. Acknowledgements go back the other way, mapped.
struct Relay {
  Ids to_from;  // id on `to` -> id on `from`
  Ids from_to;  // id on `from` -> id on `to`
  uint16_t next_id = 0;

  uint16_t NewId() {
    do {
      next_id = static_cast<uint16_t>(next_id == 0xFFFF ? 1 : next_id + 1);
    } while (to_from.contains(next_id));
    return next_id;
  }
  void Clear() {
    to_from.clear();
    from_to.clear();
  }
};

}  // namespace

struct Bridge::State : std::enable_shared_from_this<Bridge::State> {
  State(Broker* b, net::IoWorker* w, BridgeOptions o)
      : broker(b), worker(w), options(std::move(o)), timer(w->io()), resolver(w->io()) {}

  Broker* const broker;
  net::IoWorker* const worker;
  const BridgeOptions options;
  BridgeStats stats;
  asio::steady_timer timer;  // reconnect delay, then keep alive
  tcp::resolver resolver;
  std::shared_ptr<Link> remote;
  std::shared_ptr<Link> local;
  bool remote_up = false;  // CONNACK 0 from the remote
  bool local_up = false;
  bool stopped = false;
  size_t next_address = 0;
  uint32_t delay = 0;       // seconds before the next attempt
  uint64_t generation = 0;  // bumped per attempt: stale callbacks compare it
  Relay out;                // local -> remote
  Relay in;                 // remote -> local

  // --- connection sequence -------------------------------------------------------------------

  void Dial() {
    if (stopped) return;
    const uint64_t gen = ++generation;
    const std::string& address = options.addresses[next_address];
    next_address = (next_address + 1) % options.addresses.size();
    const size_t colon = address.rfind(':');
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    resolver.async_resolve(
        host, address.substr(colon + 1),
        [self = shared_from_this(), gen, host](const boost::system::error_code& ec,
                                               tcp::resolver::results_type results) {
          if (gen != self->generation || self->stopped) return;
          if (ec) return self->Failed(absl::StrCat("resolving ", host, ": ", ec.message()));
          self->ConnectTcp(gen, host, results);
        });
  }

  void ConnectTcp(uint64_t gen, const std::string& host, const tcp::resolver::results_type& r) {
    auto socket = std::make_shared<tcp::socket>(worker->io());
    asio::async_connect(*socket, r,
                        [self = shared_from_this(), gen, host, socket](
                            const boost::system::error_code& ec, const tcp::endpoint&) {
                          if (gen != self->generation || self->stopped) return;
                          if (ec) return self->Failed(absl::StrCat("connecting: ", ec.message()));
                          boost::system::error_code ignored;
                          socket->set_option(tcp::no_delay(true), ignored);
                          if (!self->options.tls) {
                            return self->RemoteConnected(
                                std::make_unique<AsioStream<tcp::socket>>(std::move(*socket)));
                          }
                          self->Handshake(gen, host, std::move(*socket));
                        });
  }

  absl::StatusOr<std::shared_ptr<asio::ssl::context>> TlsContext() {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    if (options.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->load_verify_file(options.ca_file, ec);
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat("ca_file: ", ec.message()));
    if (!options.cert_file.empty()) {
      ctx->use_certificate_chain_file(options.cert_file, ec);
      if (ec) return absl::InvalidArgumentError(absl::StrCat("cert_file: ", ec.message()));
      ctx->use_private_key_file(options.key_file, asio::ssl::context::pem, ec);
      if (ec) return absl::InvalidArgumentError(absl::StrCat("key_file: ", ec.message()));
    }
    ctx->set_verify_mode(options.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    return ctx;
  }

  void Handshake(uint64_t gen, const std::string& host, tcp::socket socket) {
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> ctx = TlsContext();
    if (!ctx.ok()) return Failed(std::string(ctx.status().message()));
    tls_context = *ctx;
    auto stream = std::make_shared<asio::ssl::stream<tcp::socket>>(std::move(socket), *tls_context);
    const std::string name = options.server_name.empty() ? host : options.server_name;
    SSL_set_tlsext_host_name(stream->native_handle(), name.c_str());
    if (options.verify) stream->set_verify_callback(asio::ssl::host_name_verification(name));
    stream->async_handshake(
        asio::ssl::stream_base::client,
        [self = shared_from_this(), gen, stream](const boost::system::error_code& ec) {
          if (gen != self->generation || self->stopped) return;
          if (ec) return self->Failed(absl::StrCat("TLS handshake: ", ec.message()));
          self->RemoteConnected(
              std::make_unique<AsioStream<asio::ssl::stream<tcp::socket>>>(std::move(*stream)));
        });
  }
  std::shared_ptr<asio::ssl::context> tls_context;

  void RemoteConnected(std::unique_ptr<Stream> stream) {
    remote = std::make_shared<Link>(std::move(stream), options.version, &remote_shim,
                                    absl::StrCat(options.name, "/remote"));
    remote->Start();
    mqtt::Connect connect;
    connect.version = options.version;
    connect.clean_start = options.clean_session;
    connect.keep_alive = options.keepalive;
    connect.client_id = options.client_id;
    if (!options.username.empty()) connect.username = options.username;
    if (!options.password.empty()) connect.password = options.password;
    if (options.version == Version::kV5 && !options.clean_session) {
      connect.properties.session_expiry_interval = options.session_expiry;
    }
    remote->SendConnect(connect, options.try_private);
  }

  void RemoteConnack(const Connack& connack) {
    if (connack.reason_code != 0) {
      return Failed(absl::StrCat("CONNACK refused with code ", connack.reason_code));
    }
    remote_up = true;
    Subscribe subscribe;
    for (const TopicLine& line : options.topics) {
      if (!line.in()) continue;
      SubscribeTopic topic;
      topic.filter = line.RemoteFilter();
      topic.qos = line.qos;
      topic.no_local = true;  // 5.0 only: the encoder leaves it out for 3.1.1
      topic.retain_as_published = true;
      subscribe.topics.push_back(std::move(topic));
    }
    if (!subscribe.topics.empty()) {
      subscribe.packet_id = 1;
      remote->SendSubscribe(subscribe);
    }
    ConnectLocal();
  }

  // The local side: a socket pair, one end handed to the broker as an accepted connection.
  void ConnectLocal() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return Failed("socketpair failed");
    }
    boost::system::error_code ec;
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);  // as TcpTransport needs
    asio::local::stream_protocol::socket our_end(worker->io());
    our_end.assign(asio::local::stream_protocol(), fds[1], ec);
    broker->Accept(std::make_shared<net::TcpTransport>(worker, fds[0],
                                                       /*gate=*/nullptr, /*internal=*/true));
    local = std::make_shared<Link>(
        std::make_unique<AsioStream<asio::local::stream_protocol::socket>>(std::move(our_end)),
        Version::kV5, &local_shim, absl::StrCat(options.name, "/local"));
    local->Start();
    mqtt::Connect connect;
    connect.version = Version::kV5;
    connect.clean_start = false;
    connect.client_id = absl::StrCat("$bridge/", options.name);
    connect.properties.session_expiry_interval = 0xFFFFFFFF;
    local->SendConnect(connect, false);
  }

  void LocalConnack(const Connack& connack) {
    if (connack.reason_code != 0) {
      return Failed(absl::StrCat("local CONNACK refused with code ", connack.reason_code));
    }
    Subscribe subscribe;
    for (const TopicLine& line : options.topics) {
      if (!line.out()) continue;
      SubscribeTopic topic;
      topic.filter = line.LocalFilter();
      topic.qos = line.qos;
      topic.no_local = true;  // what the bridge publishes locally must not come back out
      topic.retain_as_published = true;
      topic.retain_handling = 1;  // retained messages once, not at every reconnect
      subscribe.topics.push_back(std::move(topic));
    }
    if (!subscribe.topics.empty()) {
      subscribe.packet_id = 1;
      local->SendSubscribe(subscribe);
    }
    local_up = true;
    delay = 0;
    stats.connected.store(true, std::memory_order_relaxed);
    stats.connects.fetch_add(1, std::memory_order_relaxed);
    PublishState(true);
    MQTT_LOG_INFO("bridge %s connected", options.name);
    KeepAlive(generation);
    for (Publish& publish : std::exchange(early, {})) RemotePublish(std::move(publish));
  }

  void KeepAlive(uint64_t gen) {
    if (options.keepalive == 0) return;
    timer.expires_after(std::chrono::seconds(options.keepalive));
    timer.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
      if (ec || gen != self->generation || self->stopped || !self->remote_up) return;
      if (!self->remote->TakeHeardFrom() && self->pinged) {
        return self->Failed("no answer to PINGREQ within the keep alive");
      }
      self->pinged = true;
      self->remote->SendPingreq();
      self->KeepAlive(gen);
    });
  }
  bool pinged = false;

  // Closes both links and tries again after the backoff.
  void Failed(const std::string& why) {
    const bool was_up = local_up;
    Drop();
    if (stopped) return;
    delay = delay == 0 ? options.restart_min : std::min(delay * 2, options.restart_max);
    MQTT_LOG_WARN("bridge %s: %s; reconnecting in %u s", options.name, why, delay);
    if (was_up) PublishState(false);
    const uint64_t gen = ++generation;
    timer.expires_after(std::chrono::seconds(delay));
    timer.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
      if (!ec && gen == self->generation) self->Dial();
    });
  }

  void Drop() {
    if (remote) remote->Close();
    if (local) local->Close();
    remote.reset();
    local.reset();
    remote_up = local_up = pinged = false;
    early.clear();
    out.Clear();
    in.Clear();
    stats.connected.store(false, std::memory_order_relaxed);
  }

  void PublishState(bool up) {
    auto message = std::make_shared<Message>();
    message->topic = absl::StrCat("$SYS/broker/connection/", options.name, "/state");
    message->payload = up ? "1" : "0";
    message->retain = true;
    broker->PublishLocal(worker->index(), std::move(message));
  }

  // --- relay ---------------------------------------------------------------------------------

  // A PUBLISH from the local broker: map its topic and send it to the remote.
  void LocalPublish(Publish publish) {
    const TopicLine* line = Match(publish.topic, /*outgoing=*/true);
    std::optional<std::string> topic;
    if (line != nullptr) topic = line->ToRemote(publish.topic);
    if (!topic) {  // not ours (a subscription of an earlier configuration): acknowledge it
      AckDropped(*local, publish);
      return;
    }
    publish.topic = *topic;
    stats.sent.fetch_add(1, std::memory_order_relaxed);
    Forward(out, *remote, std::move(publish));
  }

  std::vector<Publish> early;  // remote PUBLISHes that came before the local CONNACK

  void RemotePublish(Publish publish) {
    const TopicLine* line = Match(publish.topic, /*outgoing=*/false);
    std::optional<std::string> topic;
    if (line != nullptr) topic = line->ToLocal(publish.topic);
    if (!topic) {
      AckDropped(*remote, publish);
      return;
    }
    if (!local_up) {  // the remote's queue, sent at once after its CONNACK: hold it
      early.push_back(std::move(publish));
      return;
    }
    publish.topic = *topic;
    stats.received.fetch_add(1, std::memory_order_relaxed);
    Forward(in, *local, std::move(publish));
  }

  const TopicLine* Match(const std::string& topic, bool outgoing) const {
    for (const TopicLine& line : options.topics) {
      if (outgoing ? line.out() && TopicMatches(line.LocalFilter(), topic)
                   : line.in() && TopicMatches(line.RemoteFilter(), topic)) {
        return &line;
      }
    }
    return nullptr;
  }

  static void AckDropped(Link& from, const Publish& publish) {
    if (publish.qos == 1) from.SendPubAck(PacketType::kPuback, publish.packet_id);
    if (publish.qos == 2) from.SendPubAck(PacketType::kPubrec, publish.packet_id);
  }

  // Sends `publish` (as received on the other link, id of that link) on `to` with an id of
  // `to`'s; a re-sent PUBLISH (same id on the other link) keeps its id on `to`.
  static void Forward(Relay& relay, Link& to, Publish publish) {
    publish.properties.topic_alias.reset();
    publish.properties.subscription_identifiers.clear();
    if (to.version() != Version::kV5) publish.properties = Properties{};
    if (publish.qos > 0) {
      const uint16_t from_id = publish.packet_id;
      auto known = relay.from_to.find(from_id);
      uint16_t to_id;
      if (known != relay.from_to.end()) {
        to_id = known->second;
        publish.dup = true;
      } else {
        to_id = relay.NewId();
        relay.from_to[from_id] = to_id;
        relay.to_from[to_id] = from_id;
        publish.dup = false;
      }
      publish.packet_id = to_id;
    }
    to.SendPublish(publish);
  }

  // PUBACK/PUBREC/PUBCOMP arriving on `to` for our PUBLISH: the same to `from`, with its id.
  // PUBREL arriving on `from`: the same to `to`.
  static void Ack(Relay& relay, Link& from, Link& to, const PubAck& ack, bool on_to) {
    if (!on_to) {  // PUBREL from `from`
      auto it = relay.from_to.find(ack.packet_id);
      if (it == relay.from_to.end()) {
        from.SendPubAck(PacketType::kPubcomp, ack.packet_id);  // nothing in flight: complete
        return;
      }
      to.SendPubAck(PacketType::kPubrel, it->second);
      return;
    }
    auto it = relay.to_from.find(ack.packet_id);
    if (it == relay.to_from.end()) return;
    const uint16_t from_id = it->second;
    if (ack.type == PacketType::kPubrec) {
      if (ack.reason_code >= 0x80) {  // 5.0 refusal: the exchange ends here
        relay.to_from.erase(it);
        relay.from_to.erase(from_id);
        from.SendPubAck(PacketType::kPubrec, from_id);  // its PUBREL then finds nothing
        return;
      }
      from.SendPubAck(PacketType::kPubrec, from_id);
      return;
    }
    relay.to_from.erase(it);
    relay.from_to.erase(from_id);
    from.SendPubAck(ack.type, from_id);
  }

  void OnPubAckFrom(bool from_remote, const PubAck& ack) {
    if (!remote_up || !local_up) return;
    const bool is_rel = ack.type == PacketType::kPubrel;
    if (from_remote) {
      if (is_rel) return Ack(in, *remote, *local, ack, /*on_to=*/false);
      return Ack(out, *local, *remote, ack, /*on_to=*/true);
    }
    if (is_rel) return Ack(out, *local, *remote, ack, /*on_to=*/false);
    Ack(in, *remote, *local, ack, /*on_to=*/true);
  }

  // --- LinkHandler, per link -------------------------------------------------------------------

  struct Shim final : LinkHandler {
    State* state;
    bool is_remote;
    Shim(State* s, bool r) : state(s), is_remote(r) {}
    void OnConnack(const Connack& c) override {
      is_remote ? state->RemoteConnack(c) : state->LocalConnack(c);
    }
    void OnPublish(Publish p) override {
      if (is_remote) return state->RemotePublish(std::move(p));
      if (state->remote_up) state->LocalPublish(std::move(p));
    }
    void OnPubAck(const PubAck& a) override { state->OnPubAckFrom(is_remote, a); }
    void OnSuback(const Suback& s) override {
      for (uint8_t code : s.reason_codes) {
        if (code >= 0x80) {
          MQTT_LOG_WARN("bridge %s: the %s broker refused a subscription (0x%02x)",
                        state->options.name, is_remote ? "remote" : "local", code);
        }
      }
    }
    void OnLinkClosed(const std::string& why) override {
      state->Failed(absl::StrCat(is_remote ? "remote" : "local", " connection: ", why));
    }
  };
  Shim remote_shim{this, true};
  Shim local_shim{this, false};
};

Bridge::Bridge(Broker* broker, net::IoWorker* worker, BridgeOptions options)
    : state_(std::make_shared<State>(broker, worker, std::move(options))) {}

Bridge::~Bridge() { Stop(); }

const std::string& Bridge::name() const { return state_->options.name; }
const BridgeStats& Bridge::stats() const { return state_->stats; }

void Bridge::Start() {
  if (std::exchange(running_, true)) return;
  state_->worker->Post([state = state_] {
    state->stopped = false;
    state->delay = 0;
    state->Dial();
  });
}

void Bridge::Stop() {
  if (!std::exchange(running_, false)) return;
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> stopped = done->get_future();
  state_->worker->Post([state = state_, done] {
    state->stopped = true;
    ++state->generation;  // callbacks of the attempt in progress see a stale generation
    const bool was_up = state->local_up;
    if (was_up) state->local->SendDisconnect();
    state->timer.cancel();
    state->resolver.cancel();
    state->Drop();
    if (was_up) state->PublishState(false);
    done->set_value();
  });
  stopped.wait_for(std::chrono::seconds(5));
}

}  // namespace mqtt::bridge
