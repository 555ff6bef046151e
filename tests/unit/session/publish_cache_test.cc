// SPDX-License-Identifier: Apache-2.0
// PublishCache (node/session/publish_cache.h): which receiver gets the shared encoding, and that
// it is always the encoding of the message asked about.
#include "node/session/publish_cache.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace mqtt {
namespace {

MessagePtr NewMessage(std::string topic, std::string payload) {
  auto message = std::make_shared<Message>();
  message->topic = std::move(topic);
  message->payload = std::move(payload);
  message->qos = 2;
  return message;
}

std::string Bytes(const SharedPublish& shared, uint16_t packet_id) {
  std::string out;
  shared.AppendTo(packet_id, &out);
  return out;
}

std::string Encoded(const Message& m, uint8_t qos, bool retain, uint16_t packet_id, Version v) {
  std::string out;
  EncodePublishParts(m.topic, m.payload, qos, retain, false, packet_id, m.properties.get(), v,
                     &out);
  return out;
}

TEST(PublishCacheTest, FirstReceiverEncodesItselfTheSecondMakesTheSharedEncoding) {
  PublishCache cache;
  MessagePtr m = NewMessage("a/b", "hello");
  EXPECT_EQ(cache.Find(m, Version::kV311, 1, false), nullptr);
  const SharedPublish* second = cache.Find(m, Version::kV311, 1, false);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(Bytes(*second, 7), Encoded(*m, 1, false, 7, Version::kV311));
  EXPECT_EQ(cache.Find(m, Version::kV311, 1, false), second);
  // 3.1 shares 3.1.1's encoding: the PUBLISH is the same.
  EXPECT_EQ(cache.Find(m, Version::kV31, 1, false), second);
}

TEST(PublishCacheTest, EachVersionQosAndRetainHasItsOwnEncoding) {
  PublishCache cache;
  MessagePtr m = NewMessage("a/b", "hello");
  for (Version v : {Version::kV311, Version::kV5}) {
    for (uint8_t qos = 0; qos <= 2; ++qos) {
      for (bool retain : {false, true}) {
        EXPECT_EQ(cache.Find(m, v, qos, retain), nullptr);
        const SharedPublish* shared = cache.Find(m, v, qos, retain);
        ASSERT_NE(shared, nullptr);
        EXPECT_EQ(Bytes(*shared, 9), Encoded(*m, qos, retain, qos ? 9 : 0, v));
      }
    }
  }
}

TEST(PublishCacheTest, ANewMessageNeverGetsTheBytesOfTheLastOne) {
  PublishCache cache;
  MessagePtr first = NewMessage("first", "1");
  cache.Find(first, Version::kV5, 0, false);
  ASSERT_NE(cache.Find(first, Version::kV5, 0, false), nullptr);
  MessagePtr second = NewMessage("second", "2");
  EXPECT_EQ(cache.Find(second, Version::kV5, 0, false), nullptr);
  const SharedPublish* shared = cache.Find(second, Version::kV5, 0, false);
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(Bytes(*shared, 0), Encoded(*second, 0, false, 0, Version::kV5));
}

TEST(PublishCacheTest, AMessageAtTheAddressOfAFreedOneGetsItsOwnBytes) {
  PublishCache cache;
  MessagePtr m = NewMessage("old", "1");
  cache.Find(m, Version::kV311, 0, false);  // seen once, not held
  const Message* address = m.get();
  m.reset();
  MessagePtr reused = NewMessage("new", "2");  // may or may not land at `address`
  const SharedPublish* shared = cache.Find(reused, Version::kV311, 0, false);
  if (reused.get() == address) {
    ASSERT_NE(shared, nullptr);  // taken for a second receiver: encoded early, but its own
    EXPECT_EQ(Bytes(*shared, 0), Encoded(*reused, 0, false, 0, Version::kV311));
  } else {
    EXPECT_EQ(shared, nullptr);
  }
}

TEST(PublishCacheTest, LargePayloadsAreNotShared) {
  PublishCache cache;
  MessagePtr m = NewMessage("t", std::string(PublishCache::kMaxPayload + 1, 'x'));
  EXPECT_EQ(cache.Find(m, Version::kV311, 0, false), nullptr);
  EXPECT_EQ(cache.Find(m, Version::kV311, 0, false), nullptr);
}

TEST(PublishCacheTest, ReleaseLetsTheMessageGo) {
  PublishCache cache;
  MessagePtr m = NewMessage("t", "x");
  cache.Find(m, Version::kV311, 0, false);
  cache.Find(m, Version::kV311, 0, false);
  EXPECT_EQ(m.use_count(), 2);
  cache.Release();
  EXPECT_EQ(m.use_count(), 1);
  EXPECT_EQ(cache.Find(m, Version::kV311, 0, false), nullptr);
}

}  // namespace
}  // namespace mqtt
