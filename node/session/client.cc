// SPDX-License-Identifier: Apache-2.0
#include "node/session/client.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "boost/asio/steady_timer.hpp"
#include "node/base/latency_histogram.h"
#include "node/base/log.h"
#include "node/net/io_worker.h"
#include "node/protocol/message.h"
#include "node/protocol/reason_codes.h"
#include "node/protocol/utf8.h"
#include "node/router/shared_subscriptions.h"
#include "node/router/topic.h"

namespace mqtt {
namespace {

using Clock = std::chrono::steady_clock;
constexpr absl::string_view kReasonPayload = "mqtt.reason";
// A connection closing after an error gets this long to drain its output, then it is cut.
constexpr auto kCloseDrainLimit = std::chrono::seconds(5);
// ACL answers remembered per connection (then forgotten all at once): most clients use few topics.
constexpr size_t kAclCacheSize = 64;

// Attaches the 5.0 reason code a failure should carry on the wire when it differs from the one
// ReasonCodeFor() derives from the status code.
absl::Status WithReason(absl::Status status, uint8_t reason) {
  status.SetPayload(kReasonPayload, absl::Cord(std::string(1, static_cast<char>(reason))));
  return status;
}

uint8_t ReasonOf(const absl::Status& status) {
  if (auto payload = status.GetPayload(kReasonPayload); payload && payload->size() == 1) {
    return static_cast<uint8_t>(std::string(*payload)[0]);
  }
  return ReasonCodeFor(status);
}

std::string AssignClientId() {
  thread_local std::mt19937_64 random(std::random_device{}());
  return absl::StrFormat("auto-%016x", random());
}

int64_t ExpiryDeadline(const Properties& properties) {
  if (!properties.message_expiry_interval) return 0;
  return MonotonicMs() + int64_t{*properties.message_expiry_interval} * 1000;
}

const char* VersionName(Version version) {
  return version == Version::kV5 ? "5.0" : version == Version::kV311 ? "3.1.1" : "3.1";
}

PubAckHeader Ack(PacketType type, uint16_t packet_id, uint8_t reason = 0) {
  return PubAckHeader{type, packet_id, reason};
}

}  // namespace

Client::Client(ClientHost* host, std::shared_ptr<net::Transport> transport)
    : host_(host), transport_(std::move(transport)), last_activity_(Clock::now()) {}

Client::~Client() = default;

Client::Extras& Client::extras() {
  if (extras_ == nullptr) extras_ = std::make_unique<Extras>();
  return *extras_;
}

const std::string& Client::auth_method() const {
  static const std::string kNone;
  return extras_ == nullptr ? kNone : extras_->auth_method;
}

namespace {

// A token bucket of `rate` tokens per second holding at most one second's worth. A packet is let
// through while the balance is positive and then charged in full, so that one larger than the
// burst still passes (the balance goes negative and the next waits longer).
class TokenBucket {
 public:
  explicit TokenBucket(uint32_t rate) : rate_(rate), tokens_(rate) {}
  bool enabled() const { return rate_ != 0; }
  bool HasToken(Clock::time_point now) {
    const double seconds = std::chrono::duration<double>(now - refilled_).count();
    if (refilled_ != Clock::time_point{}) tokens_ = std::min(rate_, tokens_ + seconds * rate_);
    refilled_ = now;
    return tokens_ > 0;
  }
  void Charge(double cost) { tokens_ -= cost; }
  // Until the balance is one token again.
  Clock::duration Wait() const {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>((1 - tokens_) / rate_));
  }

 private:
  const double rate_;
  double tokens_;
  Clock::time_point refilled_{};
};

}  // namespace

struct Client::Throttle {
  Throttle(boost::asio::io_context& io, uint32_t message_rate, uint32_t byte_rate)
      : messages(message_rate), bytes(byte_rate), timer(io) {}
  TokenBucket messages;
  TokenBucket bytes;
  std::string pending;  // read from the socket and not handled yet
  boost::asio::steady_timer timer;
  bool paused = false;  // reading paused until the timer fires
};

// With a rate limit, what is read is kept by the client (the transport would offer it again
// only with new input, and none comes while reading is paused).
size_t Client::OnInput(std::string_view data) {
  // Until CONNECT is accepted the clock runs from the accept: a client sending its CONNECT a
  // byte at a time (slowloris) does not hold the connection open beyond the CONNECT timeout.
  if (phase_ == Phase::kConnected) last_activity_ = Clock::now();
  if (throttle() == nullptr) {
    const size_t used = HandleInput(data);
    if (throttle() == nullptr || used >= data.size() || phase_ == Phase::kDone) return used;
    throttle()->pending.assign(data.substr(used));  // the CONNECT in `data` turned limits on
    return data.size();
  }
  throttle()->pending.append(data);
  if (!throttle()->paused) HandlePending();
  return data.size();
}

void Client::HandlePending() {
  std::string input = std::move(throttle()->pending);
  throttle()->pending.clear();
  const size_t used = HandleInput(input);
  if (used < input.size() && phase_ != Phase::kDone) throttle()->pending = input.substr(used);
}

// Charges the packet to the client's buckets, or pauses reading until a token is back.
bool Client::AdmitPacket(const FrameHeader& header) {
  Throttle& t = *throttle();
  const Clock::time_point now = Clock::now();
  const bool publish = header.type() == PacketType::kPublish;
  TokenBucket* empty = nullptr;
  if (publish && t.messages.enabled() && !t.messages.HasToken(now)) empty = &t.messages;
  if (empty == nullptr && t.bytes.enabled() && !t.bytes.HasToken(now)) empty = &t.bytes;
  if (empty == nullptr) {
    if (publish && t.messages.enabled()) t.messages.Charge(1);
    if (t.bytes.enabled()) t.bytes.Charge(header.header_size + header.remaining_length);
    return true;
  }
  t.paused = true;
  host_->counters().Throttled(/*bytes=*/empty == &t.bytes);
  transport_->PauseReading();
  t.timer.expires_after(empty->Wait());
  t.timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (std::shared_ptr<Client> self = weak.lock()) self->ResumeAfterThrottle();
  });
  return false;
}

void Client::ResumeAfterThrottle() {
  if (phase_ == Phase::kDone || closing()) return;
  last_activity_ = Clock::now();  // waiting for tokens is not the client's silence
  throttle()->paused = false;
  HandlePending();
  if (!throttle()->paused && phase_ != Phase::kDone && !closing()) transport_->ResumeReading();
}

size_t Client::HandleInput(std::string_view data) {
  const uint32_t max_packet_size = node().options().max_packet_size;
  size_t consumed = 0;
  while (phase_ != Phase::kDone && !closing()) {
    FrameHeader header;
    FrameResult result = PeekFrame(reinterpret_cast<const uint8_t*>(data.data()) + consumed,
                                   data.size() - consumed, &header);
    if (result == FrameResult::kMalformed) {
      Fail(MalformedError("remaining length longer than 4 bytes"));
      return data.size();
    }
    if (header.header_size != 0 &&
        uint64_t{header.header_size} + header.remaining_length > max_packet_size) {
      Fail(absl::OutOfRangeError(
          absl::StrCat("packet of ", header.remaining_length, " bytes exceeds max-packet-size")));
      return data.size();
    }
    if (result == FrameResult::kNeedMore) break;
    if (throttle() != nullptr && phase_ == Phase::kConnected && !AdmitPacket(header)) break;
    size_t end = consumed + header.header_size + header.remaining_length;
    std::string_view body = data.substr(consumed + header.header_size, header.remaining_length);
    absl::Status status = HandlePacket(header, body, data.substr(end));
    consumed = end;
    if (!status.ok()) {
      Fail(status);
      return data.size();
    }
  }
  host_->counters().BytesReceived(consumed);  // what failed above is not counted
  return consumed;
}

absl::Status Client::HandlePacket(const FrameHeader& header, std::string_view body,
                                  std::string_view rest) {
  if (absl::Status s = CheckFixedHeader(header.first_byte, version_); !s.ok()) return s;
  if (phase_ == Phase::kAwaitConnect) {
    if (header.type() != PacketType::kConnect) {
      return ProtocolError("first packet is not CONNECT");  // [MQTT-3.1.0-1]
    }
    return HandleConnect(body, rest);
  }
  if (phase_ == Phase::kAuthenticating && header.type() != PacketType::kAuth &&
      header.type() != PacketType::kDisconnect) {
    return ProtocolError("only AUTH or DISCONNECT while authenticating");  // [MQTT-4.12.0-4]
  }
  switch (header.type()) {
    case PacketType::kPublish:
      return HandlePublish(header, body);
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
      return HandlePubAck(header, body);
    case PacketType::kSubscribe:
      return HandleSubscribe(body);
    case PacketType::kUnsubscribe:
      return HandleUnsubscribe(body);
    case PacketType::kPingreq:
      if (absl::Status s = DecodePing(body); !s.ok()) return s;
      EncodePingresp(output_buffer());
      RequestFlush();
      return absl::OkStatus();
    case PacketType::kDisconnect:
      return HandleDisconnect(body);
    case PacketType::kConnect:
      return ProtocolError("second CONNECT");  // [MQTT-3.1.0-2]
    case PacketType::kAuth:
      return HandleAuth(body, rest);
    default:
      return ProtocolError(
          absl::StrCat("packet type ", static_cast<int>(header.type()), " is not sent by clients"));
  }
}

absl::Status Client::HandleConnect(std::string_view body, std::string_view rest) {
  absl::StatusOr<Connect> connect = DecodeConnect(body);
  if (!connect.ok()) {
    if (absl::IsNotFound(connect.status())) {
      // Not MQTT: no CONNACK, which a client of another protocol could not parse anyway (a
      // 3.1.1-shaped one would also mislead a 5.0 parser) [MQTT-3.1.2-1].
      MQTT_LOG_INFO("connection %s: %s: closed", peer(), connect.status().message());
      phase_ = Phase::kDone;
      Close();
      return absl::OkStatus();
    }
    if (absl::IsUnimplemented(connect.status())) {
      MQTT_LOG_INFO("connection %s: %s", peer(), connect.status().message());
      SendConnackAndClose(v3::kUnacceptableProtocolVersion, Version::kV311);  // [MQTT-3.1.2-2]
      return absl::OkStatus();
    }
    if (body.size() > 7 && body[6] == 5) version_ = Version::kV5;  // reason code in CONNACK
    return connect.status();
  }
  version_ = connect->version;
  if (connect->client_id.empty()) {
    // 3.1 has no empty ids; 3.1.1 allows them only with clean session [MQTT-3.1.3-8].
    if (version_ == Version::kV31 || (version_ == Version::kV311 && !connect->clean_start)) {
      SendConnackAndClose(v3::kIdentifierRejected, version_);
      return absl::OkStatus();
    }
    connect->client_id = AssignClientId();
    if (version_ == Version::kV5) {
      connect->properties.assigned_client_identifier = connect->client_id;  // [MQTT-3.2.2-16]
    }
  }
  if (connect->will && !IsValidTopicName(connect->will->topic)) {
    return WithReason(ProtocolError("invalid will topic"), rc::kTopicNameInvalid);
  }
  // A TLS listener with username_from_cert: the verified certificate is the credential and its
  // identity the user name (the ACL's `user` sections apply to it), as Mosquitto's
  // use_identity_as_username; CONNECT's own User Name and Password are not used.
  const std::string certificate_user = transport_->certificate_username();
  if (!certificate_user.empty()) {
    connect->username = certificate_user;
    connect->password.reset();
  }
  // The node's own connections (a bridge's local side) pass, as Mosquitto's bridges do.
  if (auth::ConnectVerdict verdict = certificate_user.empty() && !transport_->internal()
                                         ? Authenticate(*connect)
                                         : auth::ConnectVerdict::kAccepted;
      verdict != auth::ConnectVerdict::kAccepted) {
    const bool bad = verdict == auth::ConnectVerdict::kBadUserNameOrPassword;
    MQTT_LOG_INFO("client %s (%s): CONNECT refused: %s", connect->client_id, peer(),
                  bad ? "bad user name or password" : "not authorized");
    // 3.1.1 return code 4 or 5 (table 3.1); 5.0 0x86 or 0x87; then close [MQTT-3.2.2-5].
    SendConnackAndClose(bad ? v3::kBadUsernameOrPassword : v3::kNotAuthorized, version_);
    return absl::OkStatus();
  }
  if (const auto& method = connect->properties.authentication_method) {
    const auth::AuthMethod* found = node().FindAuthMethod(*method);
    if (found == nullptr) {
      SendConnackAndClose(rc::kBadAuthenticationMethod, version_);  // [MQTT-4.12.0-1]
      return absl::OkStatus();
    }
    extras().auth_method = *method;
    extras().auth_exchange = found->NewExchange();
    auth::AuthStep step = extras().auth_exchange->Start(
        connect->client_id, connect->properties.authentication_data.value_or(""));
    return ContinueConnectAuth(std::move(step), std::move(*connect), rest);
  }
  return FinishConnect(std::move(*connect), rest);
}

absl::Status Client::ContinueConnectAuth(auth::AuthStep step, Connect connect,
                                         std::string_view rest) {
  switch (step.outcome) {
    case auth::AuthStep::Outcome::kFailure:
      MQTT_LOG_INFO("connection %s: authentication with %s failed", peer(), auth_method());
      SendConnackAndClose(rc::kNotAuthorized, version_);
      return absl::OkStatus();
    case auth::AuthStep::Outcome::kContinue:
      extras().pending_connect = std::make_unique<Connect>(std::move(connect));
      phase_ = Phase::kAuthenticating;
      SendAuth(rc::kContinueAuthentication, std::move(step.data));
      return absl::OkStatus();
    case auth::AuthStep::Outcome::kSuccess:
      break;
  }
  extras().auth_exchange.reset();
  connect.properties.authentication_data.reset();
  if (!step.data.empty()) connect.properties.authentication_data = std::move(step.data);
  return FinishConnect(std::move(connect), rest);
}

absl::Status Client::FinishConnect(Connect connect, std::string_view rest) {
  uint32_t home = node().HomeWorker(connect.client_id);
  if (home == host_->index() && node().client_registry() == nullptr) {
    return AcceptConnect(std::move(connect));
  }

  // Move the connection to the session's home worker, with the bytes already read behind
  // CONNECT; in a cluster, after the registry's answer (the detached socket is not read
  // meanwhile, so nothing behind CONNECT is handled before the CONNACK).
  std::shared_ptr<net::DetachedTransport> detached = transport_->Detach();
  if (detached == nullptr) {
    return absl::UnavailableError("connection could not move to its session's worker");
  }
  phase_ = Phase::kDone;
  host_->HandOver(home, std::move(detached), std::move(connect), std::string(rest));
  host_->RemoveClient(this);
  return absl::OkStatus();
}

// AUTH: the next step of the CONNECT's exchange, or a re-authentication once connected
// (reason 0x19, then 0x18 steps) with the method of the CONNECT [MQTT-4.12.1-1].
absl::Status Client::HandleAuth(std::string_view body, std::string_view rest) {
  absl::StatusOr<Auth> packet = DecodeAuth(body, version_);
  if (!packet.ok()) return packet.status();
  if (auth_method().empty() || packet->properties.authentication_method != auth_method()) {
    return ProtocolError("AUTH without, or with another, authentication method");
  }
  const std::string data = packet->properties.authentication_data.value_or("");
  if (phase_ == Phase::kAuthenticating) {
    if (packet->reason_code != rc::kContinueAuthentication) {
      return ProtocolError("AUTH during CONNECT must continue the authentication");
    }
    Connect connect = std::move(*extras().pending_connect);
    extras().pending_connect.reset();
    phase_ = Phase::kAwaitConnect;
    return ContinueConnectAuth(extras().auth_exchange->Continue(data), std::move(connect), rest);
  }
  auth::AuthStep step;
  if (packet->reason_code == rc::kReauthenticate) {
    extras().auth_exchange = node().FindAuthMethod(auth_method())->NewExchange();
    step = extras().auth_exchange->Start(client_id_, data);
  } else if (packet->reason_code == rc::kContinueAuthentication &&
             extras().auth_exchange != nullptr) {
    step = extras().auth_exchange->Continue(data);
  } else {
    return ProtocolError("unexpected AUTH reason code");
  }
  switch (step.outcome) {
    case auth::AuthStep::Outcome::kContinue:
      SendAuth(rc::kContinueAuthentication, std::move(step.data));
      break;
    case auth::AuthStep::Outcome::kSuccess:
      extras().auth_exchange.reset();
      SendAuth(rc::kSuccess, std::move(step.data));
      break;
    case auth::AuthStep::Outcome::kFailure:
      extras().auth_exchange.reset();
      MQTT_LOG_INFO("client %s: re-authentication failed", client_id_);
      Disconnect(rc::kNotAuthorized);  // [MQTT-4.12.1-2]
      break;
  }
  return absl::OkStatus();
}

void Client::SendAuth(uint8_t reason, std::string data) {
  Auth packet;
  packet.reason_code = reason;
  packet.properties.authentication_method = auth_method();
  if (!data.empty()) packet.properties.authentication_data = std::move(data);
  EncodeAuth(packet, output_buffer());
  RequestFlush();
}

void Client::ResumeConnect(Connect connect, std::string leftover_input, ClaimResult claim) {
  version_ = connect.version;
  if (!claim.status.ok()) {
    MQTT_LOG_WARN("client %s (%s): CONNECT refused: no client-id registry majority: %s",
                  connect.client_id, peer(), claim.status.message());
    SendConnackAndClose(v3::kServerUnavailable, version_);  // 5.0: 0x88
    return;
  }
  if (claim.epoch != 0) extras().claim_epoch = claim.epoch;
  absl::Status status = AcceptConnect(std::move(connect));
  if (!status.ok()) {
    Fail(status);
    return;
  }
  transport_->Start(this, std::move(leftover_input));
}

absl::Status Client::AcceptConnect(Connect connect) {
  const BrokerOptions& options = node().options();
  client_id_ = std::move(connect.client_id);
  keep_alive_ = connect.keep_alive;
  last_activity_ = Clock::now();  // the keep alive counts from here
  if (RefusedByDiskWatermark(connect, connect.properties.session_expiry_interval.value_or(0))) {
    return absl::OkStatus();
  }
  if (options.access_control != nullptr) {
    extras().username = std::move(connect.username);
    extras().address = auth::IpAddress::FromPeer(peer());
    extras().internal = transport_->internal();
  }
  if (connect.properties.authentication_method) {
    extras().auth_method = *connect.properties.authentication_method;
  }
  if (connect.will) will_ = std::make_unique<Will>(std::move(*connect.will));
  const Properties& requested = connect.properties;
  client_max_packet_size_ = requested.maximum_packet_size.value_or(0);
  client_topic_alias_max_ = requested.topic_alias_maximum.value_or(0);
  uint32_t expiry = requested.session_expiry_interval.value_or(0);
  connect_expiry_was_zero_ = expiry == 0;

  bool session_present = false;
  session_ = host_->OpenSession(client_id_, connect.clean_start, claim_epoch(), &session_present);
  if (session_ == nullptr) {
    // A newer CONNECT with this client id won the registry's race: this one never connected.
    MQTT_LOG_INFO("client %s (%s): superseded by a newer connection with this client id",
                  client_id_, peer());
    will_.reset();
    phase_ = Phase::kDone;
    Close();
    return absl::OkStatus();
  }
  session_->set_claim_epoch(claim_epoch());
  // 3.x: clean session = 0 keeps the session until the client cleans it, or abandons it for
  // --max-session-expiry. 5.0: the Session Expiry Interval says how long it outlives the
  // connection [MQTT-3.1.2-23], at most --max-session-expiry (told in CONNACK, 3.2.2.3.2).
  const bool capped = version_ == Version::kV5 && expiry > options.max_session_expiry;
  if (capped) expiry = options.max_session_expiry;
  session_->set_expiry_interval(version_ == Version::kV5 ? expiry
                                : connect.clean_start    ? 0
                                                         : options.max_session_expiry);
  session_->set_version(version_);
  phase_ = Phase::kConnected;

  Properties ack;
  if (version_ == Version::kV5) {
    ack.assigned_client_identifier = std::move(connect.properties.assigned_client_identifier);
    ack.receive_maximum = options.receive_maximum;
    ack.maximum_packet_size = options.max_packet_size;
    ack.topic_alias_maximum = options.topic_alias_maximum;
    ack.retain_available = 1;
    ack.wildcard_subscription_available = 1;
    ack.subscription_identifier_available = 1;
    ack.shared_subscription_available = 1;
    if (capped) ack.session_expiry_interval = expiry;
    if (keep_alive_ == 0 || keep_alive_ > options.max_keep_alive) {
      if (options.max_keep_alive < 65535) {
        keep_alive_ = options.max_keep_alive;
        ack.server_keep_alive = keep_alive_;  // [MQTT-3.2.2-21]
      }
    }
    ack.authentication_method = requested.authentication_method;
    ack.authentication_data = requested.authentication_data;  // the method's last data, if any
    if (requested.request_response_information.value_or(0) == 1) {
      ack.response_information = absl::StrCat("response/", client_id_);
    }
  }
  // The session record is in this turn's batch, written before the CONNACK leaves.
  if (session_->persistent()) session_->SaveRecord(will_.get());
  SendConnack(session_present, std::move(ack));
  listener_ = static_cast<uint8_t>(transport_->listener_kind());
  host_->counters().ConnectionOpened(listener_, static_cast<uint8_t>(version_));
  MQTT_LOG_EVENT(kInfo, "client connected", {"client_id", client_id_}, {"peer", peer()},
                 {"protocol_version", VersionName(version_)}, {"clean_start", connect.clean_start},
                 {"keep_alive", keep_alive_}, {"session_present", session_present});
  session_->Attach(this, requested.receive_maximum.value_or(65535));
  if (options.message_rate != 0 || options.byte_rate != 0) {
    extras().throttle = std::make_unique<Throttle>(transport_->worker()->io(), options.message_rate,
                                                   options.byte_rate);
  }
  return absl::OkStatus();
}

void Client::SendConnack(bool session_present, Properties properties) {
  Connack connack;
  connack.session_present = session_present;  // [MQTT-3.2.2-1], [MQTT-3.2.2-2]
  connack.properties = std::move(properties);
  EncodeConnack(connack, version_, output_buffer());
  RequestFlush();
}

absl::Status Client::HandlePublish(const FrameHeader& header, std::string_view body) {
  PublishView publish;
  // 5.0 only: a 3.x PUBLISH has no properties, and constructing them costs (QoS 0 profile).
  std::optional<Properties> v5_properties;
  Properties* properties = version_ == Version::kV5 ? &v5_properties.emplace() : nullptr;
  if (absl::Status s = DecodePublishView(header.first_byte, body, version_, &publish, properties);
      !s.ok()) {
    return s;
  }
  if (properties != nullptr) {
    if (absl::Status s = ResolveTopicAlias(*properties, &publish.topic); !s.ok()) return s;
    if (!properties->subscription_identifiers.empty()) {
      return ProtocolError("PUBLISH from a client with a Subscription Identifier");
    }
  }
  // The topic was checked as UTF-8 when decoded, or when its alias was set.
  if (!IsValidUtf8TopicName(publish.topic)) {
    return WithReason(ProtocolError("invalid topic name in PUBLISH"), rc::kTopicNameInvalid);
  }
  const uint16_t packet_id = publish.packet_id;
  const uint8_t qos = publish.qos;
  host_->counters().MessageReceived(qos);
  if (qos == 2 && !session_->InboundQos2Pending(packet_id) &&
      session_->inbound_qos2_count() >= node().options().receive_maximum) {
    return WithReason(ProtocolError("more unacknowledged QoS 2 messages than Receive Maximum"),
                      rc::kReceiveMaximumExceeded);  // [MQTT-3.3.4-9]
  }
  uint8_t reason = rc::kSuccess;
  if (properties != nullptr && properties->payload_format_indicator.value_or(0) == 1 &&
      !IsValidMqttUtf8(publish.payload)) {
    reason = rc::kPayloadFormatInvalid;  // refused, not delivered
  }
  // A re-sent QoS 2 PUBLISH whose PUBREL has not arrived was delivered already [MQTT-4.3.3-2].
  const bool duplicate = qos == 2 && session_->InboundQos2Pending(packet_id);
  // Denied by the ACL, or a $SYS topic (Authorized): 5.0 acknowledges with 0x87; 3.1.1 has no
  // code, so the message is acknowledged and dropped, as Mosquitto does.
  const bool allowed = duplicate || Authorized(publish.topic, auth::Access::kWrite);
  if (!allowed && version_ == Version::kV5 && reason == rc::kSuccess) reason = rc::kNotAuthorized;
  bool deliver = !duplicate && allowed && reason == rc::kSuccess;
  // Above the disk watermark a message the node would have to store is refused: 5.0 with 0x97
  // on PUBACK/PUBREC; 3.1.1 has no negative acknowledgement, so the connection is closed and the
  // client sends it again once reconnected.
  if (deliver && qos > 0 && DiskWatermarkExceeded() && NeedsStorage(publish)) {
    host_->counters().Dropped(DropReason::kQuota);
    MQTT_LOG_WARN("client %s: QoS %d message on %s refused: disk watermark exceeded", client_id_,
                  qos, publish.topic);
    if (version_ != Version::kV5) {
      return absl::ResourceExhaustedError("disk watermark exceeded: QoS 1/2 message refused");
    }
    reason = rc::kQuotaExceeded;
    deliver = false;
  }
  AckTokenPtr token;
  if (qos > 0) {
    PubAckHeader ack = Ack(qos == 1 ? PacketType::kPuback : PacketType::kPubrec, packet_id, reason);
    QueueAck(ack, deliver ? &token : nullptr);
  }
  if (deliver) {
    if (qos == 2) {
      session_->AddInboundQos2(packet_id);
      if (session_->persistent()) host_->HoldUntilCommitted(token);
    }
    auto message = std::make_shared<Message>();
    message->topic.assign(publish.topic);
    message->payload.assign(publish.payload);
    message->qos = qos;
    message->retain = publish.retain;
    message->ack_is_only_record = qos == 1 && token != nullptr;
    message->publisher_id = client_id_;
    message->publisher_session_id = session_->id();
    if (node().client_registry() != nullptr) message->origin = NewOriginId();
    if (properties != nullptr) {
      properties->topic_alias.reset();
      message->expires_at_ms = ExpiryDeadline(*properties);
      if (*properties != Properties{}) {
        message->properties = std::make_shared<const Properties>(std::move(*properties));
      }
    }
    node().Publish(host_->index(), std::move(message), std::move(token));
  }
  return absl::OkStatus();
}

// Queues an acknowledgement. With `token`, it waits until the token is released (the message
// is durable); without, it is ready at once.
void Client::QueueAck(PubAckHeader ack, AckTokenPtr* token) {
  const uint32_t seq = next_ack_seq_++;
  pending_acks_.push_back({seq, token == nullptr, std::move(ack)});
  if (token != nullptr) {
    *token = std::make_shared<AckToken>(host_->executor(), weak_from_this(), seq);
  } else {
    SendReadyAcks();
  }
}

void Client::OnDurable(uint64_t ack_seq) {
  for (PendingAck& pending : pending_acks_) {
    if (pending.seq == ack_seq) {
      pending.ready = true;
      break;
    }
  }
  SendReadyAcks();
}

void Client::SendReadyAcks() {
  size_t sent = 0;
  std::string* buffer = output_buffer();
  const size_t before = buffer->size();
  while (sent < pending_acks_.size() && pending_acks_[sent].ready) {
    EncodePubAckHeader(pending_acks_[sent].ack, version_, buffer);
    ++sent;
  }
  if (sent == 0) return;
  host_->counters().BytesSent(buffer->size() - before);
  pending_acks_.erase(pending_acks_.begin(), pending_acks_.begin() + sent);
  RequestFlush();
}

// 5.0 Topic Alias: a PUBLISH with a topic and an alias sets the alias; with an empty topic it
// uses it [MQTT-3.3.2-12]. Aliases are per connection [MQTT-3.3.2-7].
absl::Status Client::ResolveTopicAlias(const Properties& properties, std::string_view* topic) {
  if (!properties.topic_alias) return absl::OkStatus();
  uint16_t alias = *properties.topic_alias;
  if (alias == 0 || alias > node().options().topic_alias_maximum) {
    return WithReason(ProtocolError("topic alias out of range"), rc::kTopicAliasInvalid);
  }
  if (!topic->empty()) {
    extras().inbound_aliases[alias] = std::string(*topic);
    return absl::OkStatus();
  }
  auto it = extras().inbound_aliases.find(alias);
  if (it == extras().inbound_aliases.end()) {
    return ProtocolError("topic alias used before it was set");
  }
  *topic = it->second;  // the map is not changed again while the PUBLISH is handled
  return absl::OkStatus();
}

absl::Status Client::HandlePubAck(const FrameHeader& header, std::string_view body) {
  PubAckHeader ack;
  if (absl::Status s = DecodePubAckHeader(header.first_byte, body, version_, &ack); !s.ok()) {
    return s;
  }
  switch (ack.type) {
    case PacketType::kPuback:
      if (int64_t sent_ns = 0; session_->OnPuback(ack.packet_id, &sent_ns)) {
        host_->counters().AckLatency(1, MonotonicNs() - sent_ns);
      }
      PumpRetained();
      break;
    case PacketType::kPubrec:
      // A 5.0 PUBREC with an error reason ends the exchange: no PUBREL follows (4.3.3).
      if (version_ == Version::kV5 && ack.reason_code >= 0x80) {
        session_->OnPubrecError(ack.packet_id);
        break;
      }
      // A PUBREC for an unknown id still gets its PUBREL so the client can finish.
      if (!session_->OnPubrec(ack.packet_id)) SendPubrel(ack.packet_id);
      break;
    case PacketType::kPubrel: {
      bool known = session_->ReleaseInboundQos2(ack.packet_id);
      uint8_t reason = known || version_ != Version::kV5 ? 0 : rc::kPacketIdentifierNotFound;
      EncodePubAckHeader(Ack(PacketType::kPubcomp, ack.packet_id, reason), version_,
                         output_buffer());
      RequestFlush();
      break;
    }
    default:
      if (int64_t sent_ns = 0; session_->OnPubcomp(ack.packet_id, &sent_ns)) {
        host_->counters().AckLatency(2, MonotonicNs() - sent_ns);
      }
      PumpRetained();
      break;
  }
  return absl::OkStatus();
}

absl::Status Client::HandleSubscribe(std::string_view body) {
  absl::StatusOr<Subscribe> subscribe = DecodeSubscribe(body, version_);
  if (!subscribe.ok()) return subscribe.status();
  uint32_t subscription_id = 0;
  if (!subscribe->properties.subscription_identifiers.empty()) {
    subscription_id = subscribe->properties.subscription_identifiers.front();
  }
  for (const SubscribeTopic& topic : subscribe->topics) {
    auto shared = ParseSharedFilter(topic.filter);
    if (shared.ok() && shared->has_value() && topic.no_local) {
      return ProtocolError("No Local on a shared subscription");  // [MQTT-3.8.3-4]
    }
  }
  Suback suback;
  suback.packet_id = subscribe->packet_id;
  std::vector<RetainedToSend> retained;
  for (const SubscribeTopic& topic : subscribe->topics) {
    suback.reason_codes.push_back(AddSubscription(topic, subscription_id, &retained));
  }
  if (session_->persistent()) session_->SaveRecord(will_.get());
  EncodeSuback(suback, version_, output_buffer());
  RequestFlush();
  for (RetainedToSend& filter : retained) {
    for (MessagePtr& message : filter.snapshot.messages) {
      extras().retained_backlog.push_back(
          {std::move(message), filter.snapshot.seq, subscription_id, filter.granted});
    }
  }
  PumpRetained();
  return absl::OkStatus();
}

// The retained messages of SUBSCRIBEs go out at the pace the client takes them: while less than
// half of limits.max_outbound_buffer is unwritten (sent at once, the QoS 0 ones past the limit
// would be dropped as for a client that does not read), and QoS 1/2 ones while nothing waits
// behind the in-flight window (else they would fill the queue and be dropped past
// limits.max_queued_messages). Called again when the output is written (OnOutputWritten) and
// after each PUBACK/PUBCOMP. Each message is looked up again just before it goes (in chunks,
// Router::RefreshRetained): a topic set again since the SUBSCRIBE by a publish on this node
// sends nothing (that publish reached the subscription live; the stale one must not come after
// it), nor one deleted since; one set since by another node sends its current message.
void Client::PumpRetained() {
  if (extras_ == nullptr || extras_->retained_backlog.empty()) return;
  std::deque<PendingRetained>& backlog = extras_->retained_backlog;
  const size_t byte_limit = node().options().session_limits.max_outbound_buffer / 2;
  while (!backlog.empty() && session_ != nullptr && !transport_->closing()) {
    if (transport_->unsent_bytes() > byte_limit) {
      transport_->NotifyWhenWritten();
      return;
    }
    if (!backlog.front().current) RefreshRetainedChunk(backlog);
    PendingRetained& next = backlog.front();
    if (next.message != nullptr) {
      const uint8_t qos = std::min(next.message->qos, next.granted);  // [MQTT-3.3.1-8]
      if (qos > 0 && session_->queued_count() + session_->disk_queued_count() != 0) {
        return;  // a PUBACK/PUBCOMP pumps again
      }
      OutboundMessage out{std::move(next.message), qos, true, 0, {}, 0, nullptr};
      if (next.subscription_id != 0) out.subscription_ids.push_back(next.subscription_id);
      session_->Deliver(std::move(out));
    }
    backlog.pop_front();
  }
  if (backlog.empty()) std::deque<PendingRetained>().swap(backlog);
}

// The front entry and up to 63 after it taken by the same SUBSCRIBE filter, under one lock.
void Client::RefreshRetainedChunk(std::deque<PendingRetained>& backlog) {
  constexpr size_t kChunk = 64;
  const uint64_t seen = backlog.front().seen;
  size_t n = 0;
  while (n < kChunk && n < backlog.size() && backlog[n].seen == seen) ++n;
  std::vector<MessagePtr> messages;
  messages.reserve(n);
  for (size_t i = 0; i < n; ++i) messages.push_back(std::move(backlog[i].message));
  node().router().RefreshRetained(seen, absl::MakeSpan(messages));
  for (size_t i = 0; i < n; ++i) {
    backlog[i].message = std::move(messages[i]);
    backlog[i].current = true;
  }
}

// Adds one subscription; returns its SUBACK reason code and appends the retained messages to
// send for it, taken with the subscription (Router::Subscribe): sent after the SUBACK.
uint8_t Client::AddSubscription(const SubscribeTopic& topic, uint32_t subscription_id,
                                std::vector<RetainedToSend>* retained) {
  const bool v5 = version_ == Version::kV5;
  auto shared = ParseSharedFilter(topic.filter);
  if (!shared.ok()) return v5 ? rc::kTopicFilterInvalid : v3::kSubackFailure;
  const bool is_shared = shared->has_value();
  std::string_view plain_filter = is_shared ? (*shared)->filter : topic.filter;
  if (!IsValidTopicFilter(plain_filter)) return v5 ? rc::kTopicFilterInvalid : v3::kSubackFailure;
  if (!Authorized(plain_filter, auth::Access::kSubscribe)) {
    return v5 ? rc::kNotAuthorized : v3::kSubackFailure;
  }
  auto [it, inserted] = session_->subscriptions().insert_or_assign(
      topic.filter, SubscriptionOptions{topic.qos, topic.no_local, topic.retain_as_published,
                                        topic.retain_handling, subscription_id});
  // Shared subscriptions get no retained messages (5.0 section 4.8.2). Otherwise
  // 3.1.1 sends them on every SUBSCRIBE [MQTT-3.8.4-3]; 5.0 Retain Handling: 0 always, 1 only
  // for a new subscription, 2 never [MQTT-3.3.1-9..11].
  const bool send_retained =
      !is_shared && (topic.retain_handling == 0 || (topic.retain_handling == 1 && inserted));
  Router::RetainedSnapshot* snapshot = nullptr;
  if (send_retained) snapshot = &retained->emplace_back(RetainedToSend{{}, topic.qos}).snapshot;
  node().router().Subscribe(
      topic.filter,
      Subscriber{session_->id(), host_->index(), topic.qos, topic.no_local,
                 topic.retain_as_published, subscription_id, session_->durable_client_id()},
      is_shared ? session_->online_flag() : nullptr, snapshot);
  return topic.qos;
}

absl::Status Client::HandleUnsubscribe(std::string_view body) {
  absl::StatusOr<Unsubscribe> unsubscribe = DecodeUnsubscribe(body, version_);
  if (!unsubscribe.ok()) return unsubscribe.status();
  Unsuback unsuback;
  unsuback.packet_id = unsubscribe->packet_id;
  for (const std::string& filter : unsubscribe->filters) {
    bool existed = session_->subscriptions().erase(filter) > 0;
    if (existed) node().router().Unsubscribe(filter, session_->id());
    unsuback.reason_codes.push_back(existed ? rc::kSuccess : rc::kNoSubscriptionExisted);
  }
  if (session_->persistent()) session_->SaveRecord(will_.get());
  EncodeUnsuback(unsuback, version_, output_buffer());
  RequestFlush();
  return absl::OkStatus();
}

absl::Status Client::HandleDisconnect(std::string_view body) {
  absl::StatusOr<mqtt::Disconnect> disconnect = DecodeDisconnect(body, version_);
  if (!disconnect.ok()) return disconnect.status();
  if (auto expiry = disconnect->properties.session_expiry_interval) {
    if (connect_expiry_was_zero_ && *expiry != 0) {
      return ProtocolError(
          "DISCONNECT sets a session expiry after CONNECT had 0");  // [MQTT-3.14.2-2]
    }
    if (session_ != nullptr) {
      session_->set_expiry_interval(std::min(*expiry, node().options().max_session_expiry));
    }
  }
  // A normal DISCONNECT deletes the will [MQTT-3.1.2-10]; 5.0 reason 0x04 keeps it.
  if (disconnect->reason_code != rc::kDisconnectWithWill) will_.reset();
  LogDisconnected("client sent DISCONNECT", disconnect->reason_code);
  if (will_) PublishWill();
  EndSession();
  Close();
  return absl::OkStatus();
}

// The properties a PUBLISH carries to this client: the message's own, plus what differs per
// receiver (Subscription Identifiers, the remaining Message Expiry, an outbound Topic Alias).
// Returns the message's properties untouched when nothing differs, which is the common case.
bool Client::HasOwnProperties(const OutboundMessage& out) const {
  return !out.subscription_ids.empty() || out.message->expires_at_ms != 0 ||
         client_topic_alias_max_ > 0;
}

const Properties* Client::OutboundProperties(const OutboundMessage& out, std::string_view* topic) {
  const Message& message = *out.message;
  if (!HasOwnProperties(out)) return message.properties.get();
  const bool alias_possible = client_topic_alias_max_ > 0;
  // Scratch shared by the worker's clients: used only until the PUBLISH is encoded.
  thread_local Properties scratch;
  scratch = message.properties ? *message.properties : Properties{};
  scratch.subscription_identifiers = out.subscription_ids;
  if (message.expires_at_ms != 0) {
    int64_t left_ms = message.expires_at_ms - MonotonicMs();
    scratch.message_expiry_interval =
        static_cast<uint32_t>(std::max<int64_t>(1, (left_ms + 999) / 1000));  // [MQTT-3.3.2-6]
  }
  if (alias_possible) {
    auto& outbound = extras().outbound_aliases;
    auto it = outbound.find(message.topic);
    if (it != outbound.end()) {
      scratch.topic_alias = it->second;
      *topic = {};  // the alias stands for the topic
    } else if (outbound.size() < client_topic_alias_max_) {
      uint16_t alias = static_cast<uint16_t>(outbound.size() + 1);
      outbound.emplace(message.topic, alias);
      scratch.topic_alias = alias;
    }
  }
  return &scratch;
}

bool Client::DiskWatermarkExceeded() {
  const auto& watermark = node().options().disk_watermark;
  return watermark != nullptr && watermark->exceeded() && node().store() != nullptr;
}

namespace {

// A dry run of the routing: does any target store the message?
class StorageProbe final : public RouteVisitor {
 public:
  void ToSession(const SessionTarget& t) override {
    durable |= t.durable_client_id != nullptr && t.qos > 0;
  }
  void ToNode(uint32_t, bool d) override { durable |= d; }
  void ToNodeShared(uint32_t, bool d, std::string_view, std::string_view) override { durable |= d; }
  bool durable = false;
};

}  // namespace

bool Client::NeedsStorage(const PublishView& publish) {
  if (publish.retain || (publish.qos == 2 && session_->persistent())) return true;
  Message probe_message;
  probe_message.topic.assign(publish.topic);
  probe_message.qos = publish.qos;
  probe_message.publisher_id = client_id_;
  probe_message.publisher_session_id = session_->id();
  StorageProbe probe;
  node().router().Route(probe_message, probe);
  return probe.durable;
}

// Above the disk watermark no new persistent session is made: 5.0 CONNACK 0x97, 3.1.1 return
// code 3 (server unavailable). A client resuming the session it has here is let in: reading its
// queue frees space.
bool Client::RefusedByDiskWatermark(const Connect& connect, uint32_t expiry) {
  const bool persistent = version_ == Version::kV5 ? expiry != 0 : !connect.clean_start;
  if (!persistent || !DiskWatermarkExceeded()) return false;
  if (!connect.clean_start && host_->HasSession(client_id_)) return false;
  MQTT_LOG_WARN(
      "client %s (%s): CONNECT refused: disk watermark exceeded, no new persistent "
      "session",
      client_id_, peer());
  SendConnackAndClose(version_ == Version::kV5 ? rc::kQuotaExceeded : v3::kServerUnavailable,
                      version_);
  return true;
}

SendResult Client::SendPublish(const OutboundMessage& out, bool dup, uint16_t packet_id) {
  // Checked at delivery, as Mosquitto does: a wildcard subscription may cover denied topics,
  // and retained messages and wills come this way too. Refused: dropped for this client only.
  if (!Authorized(out.message->topic, auth::Access::kRead)) return SendResult::kNotAuthorized;
  const size_t size = WritePublish(out, dup, packet_id);
  if (size == 0) return SendResult::kTooLarge;
  host_->counters().MessageSent(out.qos);
  host_->counters().BytesSent(size);
  RequestFlush();
  return SendResult::kSent;
}

size_t Client::WritePublish(const OutboundMessage& out, bool dup, uint16_t packet_id) {
  std::string* buffer = output_buffer();
  const bool shareable = !dup && (version_ != Version::kV5 || !HasOwnProperties(out));
  if (const SharedPublish* shared =
          shareable ? host_->publish_cache().Find(out.message, version_, out.qos, out.retain)
                    : nullptr) {
    if (client_max_packet_size_ != 0 && shared->size() > client_max_packet_size_) return 0;
    shared->AppendTo(packet_id, buffer);
    return shared->size();
  }
  std::string_view topic = out.message->topic;
  const Properties* properties = nullptr;
  if (version_ == Version::kV5) properties = OutboundProperties(out, &topic);
  const size_t before = buffer->size();
  EncodePublishParts(topic, out.message->payload, out.qos, out.retain, dup, packet_id, properties,
                     version_, buffer);
  if (client_max_packet_size_ != 0 && buffer->size() - before > client_max_packet_size_) {
    buffer->resize(before);
    return 0;
  }
  return buffer->size() - before;
}

void Client::SendPubrel(uint16_t packet_id) {
  EncodePubAckHeader(Ack(PacketType::kPubrel, packet_id), version_, output_buffer());
  RequestFlush();
}

void Client::TakenOver(bool resumed) {
  session_ = nullptr;
  taken_over_by_resume_ = resumed;
  Disconnect(rc::kSessionTakenOver);  // [MQTT-3.1.4-2]
}

void Client::Disconnect(uint8_t reason_code, std::string_view server_reference) {
  if (closing()) return;
  LogDisconnected("closed by the server", reason_code);
  if (version_ == Version::kV5 && phase_ == Phase::kConnected) {
    mqtt::Disconnect disconnect{reason_code, {}};
    if (!server_reference.empty()) {
      disconnect.properties.server_reference = std::string(server_reference);
    }
    EncodeDisconnect(disconnect, version_, output_buffer());
  }
  EndSession();
  Close();
}

// Called as soon as the connection starts closing, so that messages routed to the session
// while the output drains are queued for the next connection instead of written to this one.
void Client::EndSession() {
  if (session_ == nullptr) return;
  Session* session = session_;
  session_ = nullptr;
  host_->SessionDetached(session);
}

void Client::SendConnackAndClose(uint8_t code, Version version) {
  if (version == Version::kV5 && code < 0x80) {
    // 3.x return codes map onto their 5.0 counterparts.
    static constexpr uint8_t kV5Code[] = {0,
                                          rc::kUnsupportedProtocolVersion,
                                          rc::kClientIdentifierNotValid,
                                          rc::kServerUnavailable,
                                          rc::kBadUserNameOrPassword,
                                          rc::kNotAuthorized};
    if (code < sizeof(kV5Code)) code = kV5Code[code];
  }
  EncodeConnack({false, code, {}}, version, output_buffer());
  phase_ = Phase::kDone;
  Close();
}

void Client::Fail(const absl::Status& status) {
  uint8_t reason = ReasonOf(status);
  if (phase_ == Phase::kConnected) {
    LogDisconnected(std::string_view(status.message().data(), status.message().size()), reason);
  } else {
    MQTT_LOG_INFO("client %s (%s): closing: %s", client_id_.empty() ? "-" : client_id_, peer(),
                  status.message());
  }
  if (version_ == Version::kV5) {
    if (phase_ == Phase::kAwaitConnect || phase_ == Phase::kAuthenticating) {
      EncodeConnack({false, reason, {}}, version_, output_buffer());
    } else if (phase_ == Phase::kConnected) {
      EncodeDisconnect(mqtt::Disconnect{reason, {}}, version_, output_buffer());  // [MQTT-4.13.1-1]
    }
  }
  if (phase_ == Phase::kConnected && will_) PublishWill();
  phase_ = Phase::kDone;
  EndSession();
  Close();
}

bool Client::TimedOut(Clock::time_point now) const {
  if (closing()) return now - transport_->close_started() > kCloseDrainLimit;
  if (phase_ == Phase::kAwaitConnect || phase_ == Phase::kAuthenticating) {
    return now - last_activity_ > std::chrono::seconds(node().options().connect_timeout_seconds);
  }
  // The server allows one and a half times the keep alive [MQTT-3.1.2-24].
  return phase_ == Phase::kConnected && keep_alive_ > 0 &&
         now - last_activity_ > std::chrono::milliseconds(keep_alive_ * 1500);
}

void Client::OnTimeout() {
  if (closing() || phase_ != Phase::kConnected) {
    transport_->Abort();
    return;
  }
  LogDisconnected(absl::StrCat("keep alive of ", keep_alive_, "s expired"), rc::kKeepAliveTimeout);
  if (will_) PublishWill();
  Disconnect(rc::kKeepAliveTimeout);
}

void Client::OnClosed() {
  LogDisconnected("connection closed without DISCONNECT", -1);
  if (phase_ == Phase::kConnected && will_ && !node().shutting_down()) PublishWill();
  phase_ = Phase::kDone;
  EndSession();
  host_->RemoveClient(this);
}

// Client ids and peers are views into this client, valid for the call. reason_code -1: none.
void Client::LogDisconnected(std::string_view reason, int reason_code) {
  if (phase_ != Phase::kConnected || disconnect_logged_) return;
  disconnect_logged_ = true;
  host_->counters().ConnectionClosed(listener_, static_cast<uint8_t>(version_));
  if (reason_code < 0) {
    MQTT_LOG_EVENT(kInfo, "client disconnected", {"client_id", client_id_}, {"peer", peer()},
                   {"protocol_version", VersionName(version_)}, {"reason", reason});
  } else {
    MQTT_LOG_EVENT(kInfo, "client disconnected", {"client_id", client_id_}, {"peer", peer()},
                   {"protocol_version", VersionName(version_)}, {"reason", reason},
                   {"reason_code", reason_code});
  }
}

// Publishes the will now, or hands it to the shard when 5.0 Will Delay applies to a session that
// outlives this connection [MQTT-3.1.3-9].
void Client::PublishWill() {
  if (!Authorized(will_->topic, auth::Access::kWrite)) {
    MQTT_LOG_INFO("client %s: will on '%s' not published: not authorized", client_id_,
                  will_->topic);
    will_.reset();
    return;
  }
  uint32_t delay = will_->properties.will_delay_interval.value_or(0);
  MessagePtr message = WillMessage(std::move(*will_), client_id_);
  will_.reset();
  if (delay > 0 && taken_over_by_resume_) return;
  if (delay > 0 && session_ != nullptr && !session_->ends_with_connection()) {
    host_->DelayWill(client_id_, std::move(message), delay);
    return;
  }
  node().Publish(host_->index(), std::move(message), nullptr);
}

auth::ConnectVerdict Client::Authenticate(const Connect& connect) const {
  const auto& control = node().options().access_control;
  if (control == nullptr) return auth::ConnectVerdict::kAccepted;
  return control->policy()->Authenticate(connect.username, connect.password);
}

bool Client::Authorized(std::string_view topic, auth::Access access) {
  // Only the node publishes under $SYS (node/sys, Broker::PublishLocal): a client's PUBLISH or
  // will there is denied as an ACL deny is, whatever the ACL says. Mosquitto does the same
  // (security.c, acl__check_dollar: the "$SYS" prefix, write access).
  if (access == auth::Access::kWrite && topic.starts_with("$SYS")) return false;
  const auto& control = node().options().access_control;
  if (control == nullptr) return true;
  Extras& x = extras();
  if (x.internal) return true;  // the node's own connection (Transport::internal)
  if (const uint64_t generation = control->generation();
      x.policy == nullptr || x.policy_generation != generation) {
    // Generation first: a reload in between only costs one more refresh.
    x.policy_generation = generation;
    x.policy = control->policy();
    x.acl_cache.clear();
  }
  if (!x.policy->has_acl()) return true;
  // Per topic: the low bits say which accesses are allowed, the same bits << 4 which are known.
  const auto bit = static_cast<uint8_t>(access);
  auto it = x.acl_cache.find(absl::string_view(topic.data(), topic.size()));
  if (it != x.acl_cache.end() && (it->second & (bit << 4))) return (it->second & bit) != 0;
  const auth::Identity who{x.username ? &*x.username : nullptr, client_id_, x.address};
  const bool allowed = x.policy->Allowed(who, topic, access);
  const auto known = static_cast<uint8_t>((bit << 4) | (allowed ? bit : 0));
  if (it != x.acl_cache.end()) {
    it->second |= known;
  } else {
    if (x.acl_cache.size() >= kAclCacheSize) x.acl_cache.clear();
    x.acl_cache.emplace(topic, known);
  }
  return allowed;
}

}  // namespace mqtt
