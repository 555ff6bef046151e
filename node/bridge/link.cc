// SPDX-License-Identifier: Apache-2.0
#include "node/bridge/link.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node/base/log.h"
#include "node/protocol/codec.h"
#include "node/protocol/reason_codes.h"

namespace mqtt::bridge {

std::string ReasonText(Version version, uint8_t code,
                       const std::optional<std::string>& reason_string) {
  std::string text =
      absl::StrFormat("0x%02x %s", code,
                      version == Version::kV5 ? ReasonCodeName(code) : ConnackReturnCodeName(code));
  if (reason_string && !reason_string->empty()) absl::StrAppend(&text, " (", *reason_string, ")");
  return text;
}

Link::Link(std::unique_ptr<Stream> stream, Version version, LinkHandler* handler, std::string name)
    : stream_(std::move(stream)), version_(version), handler_(handler), name_(std::move(name)) {}

Link::~Link() { stream_->Close(); }

void Link::Start() { ReadNext(); }

void Link::ReadNext() {
  stream_->ReadSome(read_buffer_, sizeof(read_buffer_),
                    [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                      self->OnRead(ec, n);
                    });
}

void Link::OnRead(const boost::system::error_code& ec, size_t n) {
  if (handler_ == nullptr) return;
  if (ec) return Fail(ec == boost::asio::error::eof ? "closed by the peer" : ec.message());
  in_.append(read_buffer_, n);
  size_t used = 0;
  while (handler_ != nullptr) {
    FrameHeader header;
    const auto* data = reinterpret_cast<const uint8_t*>(in_.data()) + used;
    FrameResult frame = PeekFrame(data, in_.size() - used, &header);
    if (frame == FrameResult::kNeedMore) break;
    if (frame == FrameResult::kMalformed) return Fail("malformed remaining length");
    std::string_view body(in_.data() + used + header.header_size, header.remaining_length);
    used += header.header_size + header.remaining_length;
    heard_ = true;
    if (absl::Status s = Dispatch(header.first_byte, body); !s.ok()) {
      return Fail(std::string(s.message()));
    }
  }
  if (handler_ == nullptr) return;
  in_.erase(0, used);
  ReadNext();
}

absl::Status Link::Dispatch(uint8_t first_byte, std::string_view body) {
  if (absl::Status s = CheckFixedHeader(first_byte, version_); !s.ok()) return s;
  switch (static_cast<PacketType>(first_byte >> 4)) {
    case PacketType::kConnack: {
      absl::StatusOr<Connack> connack = DecodeConnack(body, version_);
      if (!connack.ok()) return connack.status();
      handler_->OnConnack(*connack);
      return absl::OkStatus();
    }
    case PacketType::kPublish: {
      absl::StatusOr<Publish> publish = DecodePublish(first_byte, body, version_);
      if (!publish.ok()) return publish.status();
      handler_->OnPublish(*std::move(publish));
      return absl::OkStatus();
    }
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp: {
      absl::StatusOr<PubAck> ack = DecodePubAck(first_byte, body, version_);
      if (!ack.ok()) return ack.status();
      handler_->OnPubAck(*ack);
      return absl::OkStatus();
    }
    case PacketType::kSuback: {
      absl::StatusOr<Suback> suback = DecodeSuback(body, version_);
      if (!suback.ok()) return suback.status();
      handler_->OnSuback(*suback);
      return absl::OkStatus();
    }
    case PacketType::kPingresp:
      return DecodePing(body);
    case PacketType::kDisconnect: {
      absl::StatusOr<Disconnect> disconnect = DecodeDisconnect(body, version_);
      if (!disconnect.ok()) return disconnect.status();
      return absl::UnavailableError(absl::StrCat(
          "DISCONNECT from the peer: ",
          ReasonText(version_, disconnect->reason_code, disconnect->properties.reason_string)));
    }
    default:
      return ProtocolError(absl::StrCat("unexpected packet type ", first_byte >> 4));
  }
}

void Link::SendConnect(const Connect& connect, bool try_private) {
  std::string out;
  EncodeConnect(connect, &out);
  if (try_private && connect.version != Version::kV5) {
    // Fixed header, then protocol name "MQTT" (2 + 4 bytes), then the protocol level.
    FrameHeader header;
    PeekFrame(reinterpret_cast<const uint8_t*>(out.data()), out.size(), &header);
    out[header.header_size + 6] = static_cast<char>(out[header.header_size + 6] | 0x80);
  }
  Queue(std::move(out));
}

void Link::SendPublish(const Publish& publish) {
  std::string out;
  EncodePublish(publish, version_, &out);
  Queue(std::move(out));
}

void Link::SendPubAck(PacketType type, uint16_t packet_id, uint8_t reason_code) {
  PubAck ack;
  ack.type = type;
  ack.packet_id = packet_id;
  ack.reason_code = reason_code;
  std::string out;
  EncodePubAck(ack, version_, &out);
  Queue(std::move(out));
}

void Link::SendSubscribe(const Subscribe& subscribe) {
  std::string out;
  EncodeSubscribe(subscribe, version_, &out);
  Queue(std::move(out));
}

void Link::SendPingreq() {
  std::string out;
  EncodePingreq(&out);
  Queue(std::move(out));
}

void Link::SendDisconnect() {
  std::string out;
  EncodeDisconnect(Disconnect{}, version_, &out);
  Queue(std::move(out));
}

bool Link::TakeHeardFrom() { return std::exchange(heard_, false); }

void Link::Queue(std::string bytes) {
  if (handler_ == nullptr) return;
  pending_.append(bytes);
  if (writing_.empty()) WriteNext();
}

void Link::WriteNext() {
  if (pending_.empty() || handler_ == nullptr) return;
  writing_.swap(pending_);
  stream_->Write(writing_,
                 [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                   self->writing_.clear();
                   if (ec) return self->Fail(ec.message());
                   self->WriteNext();
                 });
}

void Link::Fail(const std::string& why) {
  LinkHandler* handler = std::exchange(handler_, nullptr);
  stream_->Close();
  if (handler != nullptr) handler->OnLinkClosed(why);
}

void Link::Close() {
  handler_ = nullptr;
  stream_->Close();
}

}  // namespace mqtt::bridge
