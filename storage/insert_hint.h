// SPDX-License-Identifier: Apache-2.0
// Memtable insert hints (RocksDB's memtable_insert_with_hint_prefix_extractor) for the column
// families a persistent delivery writes. Internal to storage/.
//
// Why: each persistent delivery inserts its message, its in-flight record and, once
// acknowledged, their two SingleDeletes into skip lists that hold every entry since the last
// flush. Without a hint each insert searched from the top of the list; with one, RocksDB keeps
// the last insert position per prefix and searches only from there, and a client's keys arrive
// nearly in order (its sequence numbers grow, message ids grow). The hint costs ~250 B of
// memtable memory per prefix held in a memtable, hence one prefix per client, and none for the
// queues family, which a fan-out to many offline sessions fills with one entry per client.
//
// Domains are exact key shapes, never a range-deletion bound: RocksDB 7.8 (Debian 12) keeps one
// hint map per memtable for both its point and its range-deletion skip lists, so a hint taken
// by DeleteRange("client 0x00", ...) (a session's removal) would be used in the wrong list and
// corrupt it (an assertion in inlineskiplist.h; later RocksDB hints point inserts only).
//
// Thread-safety: the transforms are stateless.
#pragma once

#include <memory>

#include "rocksdb/slice_transform.h"

namespace mqtt::storage {

// Keys::Sequenced keys ("client 0x00 u64"): the prefix is "client 0x00". Other keys are out of
// its domain (inserted without a hint).
std::shared_ptr<const rocksdb::SliceTransform> NewClientInsertHint();

// keys::MessageId keys (8 bytes; ids only grow) share one hint; other keys have none.
std::shared_ptr<const rocksdb::SliceTransform> NewSingleInsertHint();

}  // namespace mqtt::storage
