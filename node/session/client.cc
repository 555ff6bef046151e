#include "node/session/client.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node/base/log.h"
#include "node/protocol/message.h"
#include "node/protocol/reason_codes.h"
#include "node/router/topic.h"
#include "node/session/broker.h"
#include "node/session/session.h"
#include "node/session/shard.h"

namespace mqtt {
namespace {

using Clock = std::chrono::steady_clock;
constexpr absl::string_view kReasonPayload = "mqtt.reason";
// A connection closing after an error gets this long to drain its output, then it is cut.
constexpr auto kCloseDrainLimit = std::chrono::seconds(5);

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

}  // namespace

Client::Client(Shard* shard, boost::asio::ip::tcp::socket socket)
    : net::Connection(shard->worker(), std::move(socket)),
      shard_(shard),
      broker_(shard->broker()),
      last_activity_(Clock::now()) {}

Client::~Client() = default;

size_t Client::OnInput(std::string_view data) {
  last_activity_ = Clock::now();
  const uint32_t max_packet_size = broker_->options().max_packet_size;
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
      Fail(absl::OutOfRangeError(absl::StrCat("packet of ", header.remaining_length,
                                              " bytes exceeds max-packet-size")));
      return data.size();
    }
    if (result == FrameResult::kNeedMore) break;
    size_t end = consumed + header.header_size + header.remaining_length;
    std::string_view body = data.substr(consumed + header.header_size, header.remaining_length);
    absl::Status status = HandlePacket(header, body, data.substr(end));
    consumed = end;
    if (!status.ok()) {
      Fail(status);
      return data.size();
    }
  }
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
      if (!body.empty()) return MalformedError("PINGREQ with a body");
      EncodePingresp(output_buffer());
      RequestFlush();
      return absl::OkStatus();
    case PacketType::kDisconnect:
      return HandleDisconnect(body);
    case PacketType::kConnect:
      return ProtocolError("second CONNECT");  // [MQTT-3.1.0-2]
    case PacketType::kAuth:
      return WithReason(ProtocolError("AUTH without an authentication method"),
                        rc::kProtocolError);
    default:
      return ProtocolError(absl::StrCat("packet type ", static_cast<int>(header.type()),
                                        " is not sent by clients"));
  }
}

absl::Status Client::HandleConnect(std::string_view body, std::string_view rest) {
  absl::StatusOr<Connect> connect = DecodeConnect(body);
  if (!connect.ok()) {
    if (absl::IsUnimplemented(connect.status())) {
      MQTT_LOG_INFO("connection %s: %s", peer(), connect.status().message());
      SendConnackAndClose(v3::kUnacceptableProtocolVersion, Version::kV311);  // [MQTT-3.1.2-2]
      return absl::OkStatus();
    }
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
      connect->properties.assigned_client_identifier = connect->client_id;
    }
  }
  if (connect->will && !IsValidTopicName(connect->will->topic)) {
    return WithReason(ProtocolError("invalid will topic"), rc::kTopicNameInvalid);
  }
  uint32_t home = broker_->HomeWorker(connect->client_id);
  if (home == shard_->index()) return AcceptConnect(std::move(*connect));

  // Move the socket to the session's home worker, with the bytes already read behind CONNECT.
  bool is_v6 = false;
  int fd = ReleaseSocket(&is_v6);
  phase_ = Phase::kDone;
  Shard* home_shard = &broker_->shard(home);
  home_shard->worker()->Post([home_shard, fd, is_v6, c = std::move(*connect),
                              leftover = std::string(rest)]() mutable {
    home_shard->AdoptConnection(fd, is_v6, std::move(c), std::move(leftover));
  });
  shard_->RemoveClient(this);
  return absl::OkStatus();
}

void Client::ResumeConnect(Connect connect, std::string leftover_input) {
  version_ = connect.version;
  absl::Status status = AcceptConnect(std::move(connect));
  if (!status.ok()) {
    Fail(status);
    return;
  }
  Start(std::move(leftover_input));
}

absl::Status Client::AcceptConnect(Connect connect) {
  client_id_ = std::move(connect.client_id);
  keep_alive_ = connect.keep_alive;
  will_ = std::move(connect.will);
  bool session_present = false;
  session_ = shard_->OpenSession(client_id_, connect.clean_start, &session_present);
  // 3.x: clean session ends the session with the connection. 5.0: a session expiry interval
  // of 0 (the default) does.
  session_->set_clean(version_ == Version::kV5
                          ? connect.properties.session_expiry_interval.value_or(0) == 0
                          : connect.clean_start);
  phase_ = Phase::kConnected;
  Connack connack;
  connack.session_present = session_present;  // [MQTT-3.2.2-1], [MQTT-3.2.2-2]
  connack.properties.assigned_client_identifier =
      std::move(connect.properties.assigned_client_identifier);
  EncodeConnack(connack, version_, output_buffer());
  RequestFlush();
  MQTT_LOG_DEBUG("client %s connected from %s (session present %d)", client_id_, peer(),
                 session_present);
  session_->Attach(this);
  return absl::OkStatus();
}

absl::Status Client::HandlePublish(const FrameHeader& header, std::string_view body) {
  absl::StatusOr<Publish> publish = DecodePublish(header.first_byte, body, version_);
  if (!publish.ok()) return publish.status();
  if (!IsValidTopicName(publish->topic)) {
    return WithReason(ProtocolError("invalid topic name in PUBLISH"), rc::kTopicNameInvalid);
  }
  const uint16_t packet_id = publish->packet_id;
  // A re-sent QoS 2 PUBLISH whose PUBREL has not arrived was delivered already [MQTT-4.3.3-2].
  bool duplicate = publish->qos == 2 && session_->InboundQos2Pending(packet_id);
  if (!duplicate) {
    auto message = std::make_shared<Message>();
    message->topic = std::move(publish->topic);
    message->payload = std::move(publish->payload);
    message->qos = publish->qos;
    message->retain = publish->retain;
    message->publisher_id = client_id_;
    if (version_ == Version::kV5 && publish->properties != Properties{}) {
      message->properties = std::make_shared<const Properties>(std::move(publish->properties));
    }
    broker_->Publish(shard_->index(), std::move(message));
  }
  if (publish->qos == 1) {
    EncodePubAck({PacketType::kPuback, packet_id, 0, {}}, version_, output_buffer());
  } else if (publish->qos == 2) {
    session_->AddInboundQos2(packet_id);
    EncodePubAck({PacketType::kPubrec, packet_id, 0, {}}, version_, output_buffer());
  }
  RequestFlush();
  return absl::OkStatus();
}

absl::Status Client::HandlePubAck(const FrameHeader& header, std::string_view body) {
  absl::StatusOr<PubAck> ack = DecodePubAck(header.first_byte, body, version_);
  if (!ack.ok()) return ack.status();
  switch (ack->type) {
    case PacketType::kPuback:
      session_->OnPuback(ack->packet_id);
      break;
    case PacketType::kPubrec:
      // A PUBREC for an unknown id still gets its PUBREL so the client can finish.
      if (!session_->OnPubrec(ack->packet_id)) SendPubrel(ack->packet_id);
      break;
    case PacketType::kPubrel: {
      PubAck pubcomp{PacketType::kPubcomp, ack->packet_id, 0, {}};
      if (!session_->ReleaseInboundQos2(ack->packet_id) && version_ == Version::kV5) {
        pubcomp.reason_code = rc::kPacketIdentifierNotFound;
      }
      EncodePubAck(pubcomp, version_, output_buffer());
      RequestFlush();
      break;
    }
    default:
      session_->OnPubcomp(ack->packet_id);
      break;
  }
  return absl::OkStatus();
}

absl::Status Client::HandleSubscribe(std::string_view body) {
  absl::StatusOr<Subscribe> subscribe = DecodeSubscribe(body, version_);
  if (!subscribe.ok()) return subscribe.status();
  Suback suback;
  suback.packet_id = subscribe->packet_id;
  struct RetainedToSend {
    std::string filter;
    uint8_t qos;
  };
  std::vector<RetainedToSend> retained;
  const uint8_t invalid_filter = version_ == Version::kV5 ? rc::kTopicFilterInvalid
                                                          : v3::kSubackFailure;
  for (SubscribeTopic& topic : subscribe->topics) {
    if (!IsValidTopicFilter(topic.filter)) {
      suback.reason_codes.push_back(invalid_filter);
      continue;
    }
    if (topic.filter.starts_with("$share/") || topic.filter.starts_with("$queue/")) {
      // Shared subscriptions are not implemented yet: refuse rather than treat as plain.
      suback.reason_codes.push_back(version_ == Version::kV5
                                        ? rc::kSharedSubscriptionsNotSupported
                                        : v3::kSubackFailure);
      continue;
    }
    auto [it, inserted] = session_->subscriptions().insert_or_assign(
        topic.filter, SubscriptionOptions{topic.qos, topic.no_local, topic.retain_as_published,
                                          topic.retain_handling, 0});
    broker_->AddSubscription(topic.filter, Subscriber{session_->id(), shard_->index(), topic.qos,
                                                      topic.no_local,
                                                      topic.retain_as_published, 0});
    suback.reason_codes.push_back(topic.qos);
    // [MQTT-3.8.4-3]: retained messages are sent again on a repeated subscribe (3.1.1);
    // 5.0 Retain Handling: 0 always, 1 only if new, 2 never.
    if (topic.retain_handling == 0 || (topic.retain_handling == 1 && inserted)) {
      retained.push_back({topic.filter, topic.qos});
    }
  }
  EncodeSuback(suback, version_, output_buffer());
  RequestFlush();
  for (const RetainedToSend& r : retained) {
    for (const MessagePtr& message : broker_->RetainedMatching(r.filter)) {
      session_->Deliver(message, std::min(message->qos, r.qos), /*retain=*/true);  // [MQTT-3.3.1-8]
    }
  }
  return absl::OkStatus();
}

absl::Status Client::HandleUnsubscribe(std::string_view body) {
  absl::StatusOr<Unsubscribe> unsubscribe = DecodeUnsubscribe(body, version_);
  if (!unsubscribe.ok()) return unsubscribe.status();
  Unsuback unsuback;
  unsuback.packet_id = unsubscribe->packet_id;
  for (const std::string& filter : unsubscribe->filters) {
    bool existed = session_->subscriptions().erase(filter) > 0;
    if (existed) broker_->RemoveSubscription(filter, session_->id());
    unsuback.reason_codes.push_back(existed ? rc::kSuccess : rc::kNoSubscriptionExisted);
  }
  EncodeUnsuback(unsuback, version_, output_buffer());
  RequestFlush();
  return absl::OkStatus();
}

absl::Status Client::HandleDisconnect(std::string_view body) {
  absl::StatusOr<mqtt::Disconnect> disconnect = DecodeDisconnect(body, version_);
  if (!disconnect.ok()) return disconnect.status();
  // A normal DISCONNECT deletes the will [MQTT-3.1.2-10]; 5.0 reason 0x04 keeps it.
  if (disconnect->reason_code != rc::kDisconnectWithWill) will_.reset();
  EndSession();
  Close();
  return absl::OkStatus();
}

void Client::SendPublish(const Message& message, uint8_t qos, bool retain, bool dup,
                         uint16_t packet_id) {
  const Properties* properties =
      version_ == Version::kV5 ? message.properties.get() : nullptr;
  EncodePublishParts(message.topic, message.payload, qos, retain, dup, packet_id, properties,
                     version_, output_buffer());
  RequestFlush();
}

void Client::SendPubrel(uint16_t packet_id) {
  EncodePubAck({PacketType::kPubrel, packet_id, 0, {}}, version_, output_buffer());
  RequestFlush();
}

void Client::Disconnect(uint8_t reason_code) {
  if (closing()) return;
  if (version_ == Version::kV5 && phase_ == Phase::kConnected) {
    EncodeDisconnect(mqtt::Disconnect{reason_code, {}}, version_, output_buffer());
  }
  EndSession();
  Close();
}

// Called as soon as the connection starts closing, so that messages routed to the session
// while the output drains are queued for the next connection instead of written to this one.
void Client::EndSession() {
  if (session_ == nullptr) return;
  session_->Detach();
  if (session_->clean()) shard_->DestroySession(session_);
  session_ = nullptr;
}

void Client::SendConnackAndClose(uint8_t code, Version version) {
  if (version == Version::kV5) {
    // 3.x return codes map onto their 5.0 counterparts.
    static constexpr uint8_t kV5Code[] = {0, rc::kUnsupportedProtocolVersion,
                                          rc::kClientIdentifierNotValid, rc::kServerUnavailable,
                                          rc::kBadUserNameOrPassword, rc::kNotAuthorized};
    if (code < sizeof(kV5Code)) code = kV5Code[code];
  }
  EncodeConnack({false, code, {}}, version, output_buffer());
  phase_ = Phase::kDone;
  Close();
}

void Client::Fail(const absl::Status& status) {
  uint8_t reason = ReasonOf(status);
  MQTT_LOG_INFO("client %s (%s): closing: %s", client_id_.empty() ? "-" : client_id_, peer(),
                status.message());
  if (version_ == Version::kV5) {
    if (phase_ == Phase::kAwaitConnect) {
      EncodeConnack({false, reason, {}}, version_, output_buffer());
    } else if (phase_ == Phase::kConnected) {
      EncodeDisconnect(mqtt::Disconnect{reason, {}}, version_, output_buffer());  // [MQTT-4.13.1-1]
    }
  }
  if (phase_ != Phase::kConnected) phase_ = Phase::kDone;
  EndSession();
  Close();
}

bool Client::TimedOut(Clock::time_point now) const {
  if (closing()) return now - close_started() > kCloseDrainLimit;
  if (phase_ == Phase::kAwaitConnect) {
    return now - last_activity_ > std::chrono::seconds(broker_->options().connect_timeout_seconds);
  }
  // The server allows one and a half times the keep alive [MQTT-3.1.2-24].
  return phase_ == Phase::kConnected && keep_alive_ > 0 &&
         now - last_activity_ > std::chrono::milliseconds(keep_alive_ * 1500);
}

void Client::OnTimeout() {
  if (closing() || phase_ == Phase::kAwaitConnect) {
    Abort();
    return;
  }
  MQTT_LOG_INFO("client %s (%s): keep alive of %ds expired", client_id_, peer(), keep_alive_);
  Disconnect(rc::kKeepAliveTimeout);  // the will is published on close
}

void Client::OnClosed() {
  if (phase_ == Phase::kConnected && will_ && !broker_->shutting_down()) PublishWill();
  phase_ = Phase::kDone;
  EndSession();
  shard_->RemoveClient(this);
}

void Client::PublishWill() {
  auto message = std::make_shared<Message>();
  message->topic = std::move(will_->topic);
  message->payload = std::move(will_->payload);
  message->qos = will_->qos;
  message->retain = will_->retain;
  message->publisher_id = client_id_;
  will_->properties.will_delay_interval.reset();
  if (will_->properties != Properties{}) {
    message->properties = std::make_shared<const Properties>(std::move(will_->properties));
  }
  will_.reset();
  broker_->Publish(shard_->index(), std::move(message));
}

}  // namespace mqtt
