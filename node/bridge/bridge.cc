// SPDX-License-Identifier: Apache-2.0
// The bridge's state machine (bridge.h): connect the remote (resolve, TCP, TLS, CONNECT,
// SUBSCRIBE), then the local session over a socket pair (CONNECT, SUBSCRIBE), then relay; on any
// failure close both and reconnect after a backoff. Everything runs on the bridge's worker.
#include "node/bridge/bridge.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <future>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/local/stream_protocol.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/asio/steady_timer.hpp"
#include "node/base/host_port.h"
#include "node/base/log.h"
#include "node/bridge/link.h"
#include "node/bridge/relay.h"
#include "node/net/tcp_transport.h"
#include "node/protocol/reason_codes.h"
#include "node/router/topic.h"

namespace mqtt::bridge {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

uint32_t ReceiveMaximum(const Connack& connack) {
  return connack.properties.receive_maximum.value_or(65535);
}

int64_t NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

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
  // Incoming QoS 2 exchanges open at this node (Relay::OpenQos2) when the connection dropped. A
  // remote that resumes its session re-sends their PUBLISH or PUBREL; one that does not (clean
  // session, or its session expired) never will, so the bridge releases them itself: else this
  // node would keep their ids as received and take the remote's next new messages under those
  // ids as duplicates [MQTT-4.3.3-10].
  absl::flat_hash_set<uint16_t> orphans;
  std::string last_logged;  // the failure last logged: the same again is not logged
  uint64_t repeats = 0;     // failures not logged since

  // What Status() copies for other threads (`mqttctl bridges`). Written on the worker, but for
  // `owner` (SetOwner, on its caller's thread).
  mutable absl::Mutex status_mu;
  BridgeStatus status ABSL_GUARDED_BY(status_mu);
  std::atomic<uint32_t> inflight_out{0};  // out.open.size(), for Status()

  template <typename F>
  void UpdateStatus(F&& change) {
    absl::MutexLock lock(&status_mu);
    change(status);
  }

  // --- connection sequence -------------------------------------------------------------------

  void Dial() {
    if (stopped) return;
    const uint64_t gen = ++generation;
    const std::string& address = options.addresses[next_address];
    next_address = (next_address + 1) % options.addresses.size();
    UpdateStatus([&](BridgeStatus& s) { s.remote_address = address; });
    // The config checked the address (node/config/yaml.cc): a failure here is retried as any.
    absl::StatusOr<HostPort> remote_address = ParseHostPort(address);
    if (!remote_address.ok()) return Failed(std::string(remote_address.status().message()));
    std::string host = std::move(remote_address->host);
    resolver.async_resolve(
        host, absl::StrCat(remote_address->port),
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
      return Failed(absl::StrCat(
          "the remote refused the connection: CONNACK ",
          ReasonText(options.version, connack.reason_code, connack.properties.reason_string)));
    }
    remote_up = true;
    out.window = ReceiveMaximum(connack);
    if (connack.session_present) orphans.clear();  // the remote re-sends their PUBRELs
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
    // The remote's Receive Maximum, so that the broker's window for this session is
    // min(limits.max_inflight, it) (Session::Attach). What the broker re-sends on resuming the
    // session may still exceed it: the relay holds that back (Relay::window).
    if (out.window < 65535) connect.properties.receive_maximum = out.window;
    local->SendConnect(connect, false);
  }

  void LocalConnack(const Connack& connack) {
    if (connack.reason_code != 0) {
      return Failed(absl::StrCat(
          "this node refused the local session: CONNACK ",
          ReasonText(Version::kV5, connack.reason_code, connack.properties.reason_string)));
    }
    in.window = ReceiveMaximum(connack);
    // Completed at this node (its PUBCOMP, for no open exchange, goes nowhere).
    for (uint16_t id : std::exchange(orphans, {})) local->SendPubAck(PacketType::kPubrel, id);
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
    uint64_t failed = 0;
    std::string address;
    UpdateStatus([&](BridgeStatus& s) {
      failed = s.failed_attempts;
      address = s.remote_address;
      s.connected = true;
      s.connected_since_unix_ms = NowUnixMs();
      s.failed_attempts = 0;
      s.retry_delay_seconds = 0;
      s.send_window = out.window;
    });
    PublishState(true);
    MQTT_LOG_INFO("bridge %s connected to %s (%s, Receive Maximum %u)%s", options.name, address,
                  options.version == Version::kV5 ? "MQTT 5.0" : "MQTT 3.1.1", out.window,
                  failed == 0
                      ? ""
                      : absl::StrCat(" after ", failed, " failed attempt", failed == 1 ? "" : "s"));
    last_logged.clear();
    repeats = 0;
    KeepAlive(generation);
    for (uint16_t id : std::exchange(early_pubrels, {})) {
      OnPubAckFrom(/*from_remote=*/true, PubAck{PacketType::kPubrel, id, 0, {}});
    }
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
    LogFailure(why);
    UpdateStatus([&](BridgeStatus& s) {
      s.last_error = why;
      s.last_error_unix_ms = NowUnixMs();
      ++s.failed_attempts;
      s.retry_delay_seconds = delay;
    });
    if (was_up) PublishState(false);
    const uint64_t gen = ++generation;
    timer.expires_after(std::chrono::seconds(delay));
    timer.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
      if (!ec && gen == self->generation) self->Dial();
    });
  }

  // One line per change of state, not per retry: a remote that refuses (or is down) for an hour
  // would otherwise log every restart_max seconds. The same failure again is counted and told
  // when something else happens.
  void LogFailure(const std::string& why) {
    if (why == last_logged) {
      ++repeats;
      MQTT_LOG_DEBUG("bridge %s: %s (again); reconnecting in %u s", options.name, why, delay);
      return;
    }
    const std::string before =
        repeats == 0 ? "" : absl::StrCat(" (the previous failure repeated ", repeats, " times)");
    MQTT_LOG_WARN("bridge %s: %s: %s; reconnecting in %u s, up to every %u s%s", options.name,
                  RemoteAddress(), why, delay, options.restart_max, before);
    last_logged = why;
    repeats = 0;
  }

  std::string RemoteAddress() const {
    absl::MutexLock lock(&status_mu);
    return status.remote_address;
  }

  void Drop() {
    if (remote) remote->Close();
    if (local) local->Close();
    remote.reset();
    local.reset();
    remote_up = local_up = pinged = false;
    early.clear();
    early_pubrels.clear();
    for (uint16_t id : in.OpenQos2()) orphans.insert(id);
    out.Clear();
    in.Clear();
    inflight_out.store(0, std::memory_order_relaxed);
    stats.connected.store(false, std::memory_order_relaxed);
    UpdateStatus([](BridgeStatus& s) {
      s.connected = false;
      s.connected_since_unix_ms = 0;
      s.send_window = 0;
    });
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
      AckDropped(out, *local, publish);
      return;
    }
    publish.topic = *topic;
    stats.sent.fetch_add(1, std::memory_order_relaxed);
    Forward(out, *remote, std::move(publish));
  }

  std::vector<Publish> early;           // remote PUBLISHes that came before the local CONNACK
  std::vector<uint16_t> early_pubrels;  // and PUBRELs (a resumed remote session re-sends them)

  void RemotePublish(Publish publish) {
    const TopicLine* line = Match(publish.topic, /*outgoing=*/false);
    std::optional<std::string> topic;
    if (line != nullptr) topic = line->ToLocal(publish.topic);
    if (!topic) {
      AckDropped(in, *remote, publish);
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

  static void AckDropped(Relay& relay, Link& from, const Publish& publish) {
    if (publish.qos == 1) from.SendPubAck(PacketType::kPuback, publish.packet_id);
    if (publish.qos == 2) {
      relay.dropped.insert(publish.packet_id);
      from.SendPubAck(PacketType::kPubrec, publish.packet_id);
    }
  }

  // Sends `publish` (as received on the other link) on `to` with its packet id (Relay), or holds
  // it while `to`'s window is full.
  void Forward(Relay& relay, Link& to, Publish publish) {
    publish.properties.topic_alias.reset();
    publish.properties.subscription_identifiers.clear();
    if (to.version() != Version::kV5) publish.properties = Properties{};
    if (publish.qos > 0 && !relay.open.contains(publish.packet_id)) {
      if (relay.open.size() >= relay.window || !relay.held.empty()) {
        relay.held.push_back(std::move(publish));
        return;
      }
      relay.open.emplace(publish.packet_id, publish.qos);
      NoteInflight();
    }
    to.SendPublish(publish);
  }

  // Sends what the window now takes, in order.
  void SendHeld(Relay& relay, Link& to) {
    while (!relay.held.empty() && relay.open.size() < relay.window) {
      relay.open.emplace(relay.held.front().packet_id, relay.held.front().qos);
      to.SendPublish(relay.held.front());
      relay.held.pop_front();
    }
    NoteInflight();
  }

  void NoteInflight() {
    inflight_out.store(static_cast<uint32_t>(out.open.size()), std::memory_order_relaxed);
  }

  // PUBACK/PUBREC/PUBCOMP arriving on `to` for our PUBLISH: the same to `from`. PUBREL arriving
  // on `from`: the same to `to`, also for an exchange this connection did not start (a session
  // resumed after a reconnect re-sends the PUBREL of each PUBREC'd message [MQTT-4.4.0-1]); it
  // is open on `to` until its PUBCOMP.
  void Ack(Relay& relay, Link& from, Link& to, const PubAck& ack, bool on_to) {
    if (!on_to) {
      if (relay.dropped.erase(ack.packet_id) != 0) {
        from.SendPubAck(PacketType::kPubcomp, ack.packet_id);
        return;
      }
      relay.open.emplace(ack.packet_id, 2);
      NoteInflight();
      to.SendPubAck(PacketType::kPubrel, ack.packet_id);
      return;
    }
    if (!relay.open.contains(ack.packet_id)) return;
    // The reason code goes through to a 5.0 sender: a refused PUBREC ends the exchange there too
    // (no PUBREL follows), a refused PUBACK is logged by the broker.
    const uint8_t reason = from.version() == Version::kV5 ? ack.reason_code : 0;
    if (ack.type == PacketType::kPubrec && ack.reason_code < 0x80) {
      from.SendPubAck(PacketType::kPubrec, ack.packet_id, reason);
      return;
    }
    relay.open.erase(ack.packet_id);
    from.SendPubAck(ack.type, ack.packet_id, reason);
    SendHeld(relay, to);
  }

  void OnPubAckFrom(bool from_remote, const PubAck& ack) {
    const bool is_rel = ack.type == PacketType::kPubrel;
    if (from_remote && is_rel && remote_up && !local_up) {  // as `early`
      early_pubrels.push_back(ack.packet_id);
      return;
    }
    if (!remote_up || !local_up) return;
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

BridgeStatus Bridge::Status() const {
  BridgeStatus copy;
  {
    absl::MutexLock lock(&state_->status_mu);
    copy = state_->status;
  }
  copy.name = state_->options.name;
  copy.running = running_.load(std::memory_order_relaxed);
  copy.protocol_version = state_->options.version == Version::kV5 ? "5.0" : "3.1.1";
  const BridgeStats& stats = state_->stats;
  copy.connects = stats.connects.load(std::memory_order_relaxed);
  copy.messages_out = stats.sent.load(std::memory_order_relaxed);
  copy.messages_in = stats.received.load(std::memory_order_relaxed);
  copy.inflight_out = copy.connected ? state_->inflight_out.load(std::memory_order_relaxed) : 0;
  return copy;
}

void Bridge::SetOwner(std::string node_id) {
  state_->UpdateStatus([&](BridgeStatus& s) { s.owner = std::move(node_id); });
}

void Bridge::Start() {
  if (running_.exchange(true)) return;
  state_->worker->Post([state = state_] {
    state->stopped = false;
    state->delay = 0;
    state->last_logged.clear();
    state->repeats = 0;
    state->UpdateStatus([](BridgeStatus& s) {
      s.failed_attempts = 0;
      s.retry_delay_seconds = 0;
    });
    state->Dial();
  });
}

void Bridge::Stop() {
  if (!running_.exchange(false)) return;
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
