// Holds back a publisher's PUBACK/PUBREC until the message is durable for every persistent
// session it was routed to.
//
// One token per inbound QoS 1/2 PUBLISH. Every worker batch that persists part of the message
// (the inbound QoS 2 id, the retained copy, a queue entry or in-flight record of a persistent
// subscriber on any worker) keeps a reference until its RocksDB write returns; routing to
// sessions that persist nothing drops its reference at once. When the last reference goes, the
// publisher's client is told, on its own worker, that acknowledgement `ack_seq` may be sent.
//
// Threading: the token may die on any worker; the notification always runs on the publisher's.
#pragma once

#include <cstdint>
#include <memory>

#include "node/net/io_worker.h"

namespace mqtt {

class Client;

class AckToken {
 public:
  AckToken(net::IoWorker* worker, std::weak_ptr<Client> client, uint64_t ack_seq)
      : worker_(worker), client_(std::move(client)), ack_seq_(ack_seq) {}
  ~AckToken();
  AckToken(const AckToken&) = delete;
  // The message could not be made durable: no acknowledgement when the token goes; the
  // publisher re-sends after reconnecting.
  void Cancel() { client_.reset(); }
  AckToken& operator=(const AckToken&) = delete;

 private:
  net::IoWorker* const worker_;
  std::weak_ptr<Client> client_;
  const uint64_t ack_seq_;
};

using AckTokenPtr = std::shared_ptr<AckToken>;

}  // namespace mqtt
