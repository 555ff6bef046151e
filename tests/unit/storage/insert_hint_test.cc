// SPDX-License-Identifier: Apache-2.0
// Memtable insert hints (storage/insert_hint.h): the prefixes they give, and a store whose
// hinted families take interleaved clients' in-flight windows, with client ids that are
// prefixes of each other, in and out of order, with a session removed (a range deletion) among
// them, and reads them back exactly, before and after a reopen (the hint only chooses where a
// skip-list search starts: it must never change order).
#include "storage/insert_hint.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/keys.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::storage {
namespace {

using testing_util::Inflight;
using testing_util::Msg;
using testing_util::Session;
using testing_util::StorageTest;

std::string ToString(const rocksdb::Slice& s) { return s.ToString(); }

TEST(InsertHintTest, ClientHintIsTheClientIdWithItsSeparator) {
  const auto hint = NewClientInsertHint();
  const std::string alice = keys::Sequenced("alice", 7);
  ASSERT_TRUE(hint->InDomain(alice));
  EXPECT_EQ(ToString(hint->Transform(alice)), std::string("alice\0", 6));
  EXPECT_EQ(ToString(hint->Transform(keys::Sequenced("alice", 1u << 20))),
            ToString(hint->Transform(alice)));
  // "al" is a prefix of "alice" as text, not as a hint.
  EXPECT_EQ(ToString(hint->Transform(keys::Sequenced("al", 7))), std::string("al\0", 3));
  // A sequence number's zero bytes come after the separator and are not part of the prefix.
  EXPECT_EQ(ToString(hint->Transform(keys::Sequenced("b", 0))), std::string("b\0", 2));
  EXPECT_FALSE(hint->InDomain(rocksdb::Slice("no-separator")));
  // A session's removal is DeleteRange(ClientPrefix, ClientEnd): neither bound takes a hint
  // (insert_hint.h says why).
  EXPECT_FALSE(hint->InDomain(keys::ClientPrefix("alice")));
  EXPECT_FALSE(hint->InDomain(keys::ClientEnd("alice")));
  EXPECT_FALSE(hint->InDomain(keys::PacketId("alice", 3)));
}

TEST(InsertHintTest, SingleHintCoversEveryMessageId) {
  const auto hint = NewSingleInsertHint();
  for (uint64_t id : {uint64_t{1}, uint64_t{256}, ~uint64_t{0}}) {
    const std::string key = keys::MessageId(id);
    ASSERT_TRUE(hint->InDomain(key));
    EXPECT_TRUE(hint->Transform(key).empty());
  }
}

TEST(InsertHintTest, SingleHintTakesOnlyMessageIds) {
  EXPECT_FALSE(NewSingleInsertHint()->InDomain(keys::ClientPrefix("alice")));
}

class HintedStoreTest : public StorageTest {};

TEST_F(HintedStoreTest, InterleavedClientsReadBackInSendOrder) {
  const std::vector<std::string> clients = {"c", "c1", "c10", "d"};
  Batch sessions;
  for (const std::string& c : clients) sessions.PutSession(Session(c));
  MustWrite(sessions);
  // Each round: every client gets two new deliveries (one sequence number out of order), and the
  // oldest of the previous round is acknowledged; message ids interleave across clients.
  std::map<std::string, std::map<uint64_t, uint64_t>> expected;  // client -> seq -> message id
  uint64_t next_id = 1;
  for (uint64_t round = 0; round < 50; ++round) {
    Batch batch;
    for (const std::string& c : clients) {
      for (uint64_t seq : {2 * round + 2, 2 * round + 1}) {
        const uint64_t id = next_id++;
        batch.PutMessage(id, Msg("t/" + c, std::to_string(id)));
        batch.PutInflight(
            c, seq, Inflight(static_cast<uint16_t>(seq), InflightRecord::STAGE_AWAIT_PUBACK, id));
        expected[c][seq] = id;
      }
      if (round > 0) {
        batch.RemoveInflight(c, 2 * round - 1);
        expected[c].erase(2 * round - 1);
      }
    }
    MustWrite(batch);
  }
  // A session's removal (a range deletion) amid hinted inserts, and a new session of that id.
  Batch drop;
  drop.DeleteSession("c1");
  drop.PutSession(Session("c1"));
  drop.PutMessage(next_id, Msg("t/c1", std::to_string(next_id)));
  drop.PutInflight("c1", 1, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, next_id));
  MustWrite(drop);
  expected["c1"] = {{1, next_id}};
  for (bool reopened : {false, true}) {
    if (reopened) Reopen();
    for (const std::string& c : clients) {
      absl::StatusOr<SessionState> state = store_->LoadSession(c);
      ASSERT_TRUE(state.ok()) << state.status();
      std::vector<uint64_t> seqs, ids;
      for (const InflightEntry& e : state->inflight) {
        seqs.push_back(e.seq);
        ids.push_back(e.record.message_id());
        ASSERT_TRUE(e.message.has_value()) << c << " seq " << e.seq;
        EXPECT_EQ(e.message->payload(), std::to_string(e.record.message_id()));
      }
      std::vector<uint64_t> want_seqs, want_ids;
      for (const auto& [seq, id] : expected[c]) {
        want_seqs.push_back(seq);
        want_ids.push_back(id);
      }
      EXPECT_EQ(seqs, want_seqs) << c << (reopened ? " after reopen" : "");
      EXPECT_EQ(ids, want_ids) << c;
    }
  }
}

}  // namespace
}  // namespace mqtt::storage
