#include "node/session/ack_token.h"

#include "node/session/client.h"

namespace mqtt {

AckToken::~AckToken() {
  if (worker_->InThisThread()) {
    if (auto client = client_.lock()) client->AckReady(ack_seq_);
    return;
  }
  worker_->Post([client = std::move(client_), seq = ack_seq_] {
    if (auto c = client.lock()) c->AckReady(seq);
  });
}

}  // namespace mqtt
