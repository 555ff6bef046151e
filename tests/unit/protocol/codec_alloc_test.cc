// SPDX-License-Identifier: Apache-2.0
// Allocation counts on the hot paths: EncodePublishParts must not allocate beyond growing `out`
// once, and decoding allocates per field, never per byte. Global operator new is replaced in
// this binary to count allocations made between Start() and Stop().
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "gtest/gtest.h"
#include "node/protocol/codec.h"
#include "tests/unit/protocol/codec_test_util.h"

namespace {

std::atomic<bool> counting{false};
std::atomic<int> allocations{0};

void* CountedAlloc(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  std::abort();  // tests only: no exceptions
}

}  // namespace

void* operator new(std::size_t size) { return CountedAlloc(size); }
void* operator new[](std::size_t size) { return CountedAlloc(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace mqtt {
namespace {

using testing_util::Hex;

class AllocationCounter {
 public:
  AllocationCounter() {
    allocations = 0;
    counting = true;
  }
  ~AllocationCounter() { counting = false; }
  int Stop() {
    counting = false;
    return allocations.load();
  }
};

Properties DeliveryProperties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.content_type = "application/json; charset=utf-8";
  p.correlation_data = std::string(40, 'c');
  p.subscription_identifiers = {1, 300, 70000};
  p.user_properties = {{"a-long-user-property-key", "a-long-user-property-value"}, {"k", "v"}};
  return p;
}

TEST(Allocations, EncodePublishPartsIntoReservedBufferAllocatesNothing) {
  const Properties properties = DeliveryProperties();
  const std::string payload(1000, 'x');
  std::string out;
  out.reserve(4096);
  AllocationCounter counter;
  EncodePublishParts("some/fairly/long/topic/name", payload, 1, false, true, 7, &properties,
                     Version::kV5, &out);
  EXPECT_EQ(counter.Stop(), 0);
  EXPECT_GT(out.size(), 1000u);
}

TEST(Allocations, EncodePublishPartsGrowsOutputOnce) {
  const Properties properties = DeliveryProperties();
  const std::string payload(100'000, 'x');
  for (Version version : {Version::kV311, Version::kV5}) {
    std::string out = "already here";
    AllocationCounter counter;
    EncodePublishParts("some/fairly/long/topic/name", payload, 2, true, false, 7, &properties,
                       version, &out);
    EXPECT_EQ(counter.Stop(), 1);
  }
}

TEST(Allocations, DecodePublishAllocatesPerFieldNotPerByte) {
  Publish publish{.topic = "a/topic/longer/than/the/sso/buffer",
                  .payload = std::string(1 << 20, 'p'),
                  .qos = 1,
                  .packet_id = 3};
  std::string wire;
  EncodePublish(publish, Version::kV311, &wire);
  const testing_util::Frame frame = testing_util::SplitFrame(wire);
  AllocationCounter counter;
  absl::StatusOr<Publish> decoded = DecodePublish(frame.first_byte, frame.body, Version::kV311);
  EXPECT_EQ(counter.Stop(), 2);  // topic and payload
  ASSERT_OK(decoded);
}

TEST(Allocations, DecodeSubscribeReservesTopicsOnce) {
  std::string body = Hex("0001");
  for (int i = 0; i < 200; ++i) body += Hex("0003 612f62 01");  // "a/b" QoS 1: fits SSO
  AllocationCounter counter;
  absl::StatusOr<Subscribe> decoded = DecodeSubscribe(body, Version::kV311);
  EXPECT_EQ(counter.Stop(), 1);
  ASSERT_OK(decoded);
  EXPECT_EQ(decoded->topics.size(), 200u);
}

TEST(Allocations, DecodeUnsubscribeReservesFiltersOnce) {
  std::string body = Hex("0001 00");
  for (int i = 0; i < 200; ++i) body += Hex("0003 612f62");
  AllocationCounter counter;
  absl::StatusOr<Unsubscribe> decoded = DecodeUnsubscribe(body, Version::kV5);
  EXPECT_EQ(counter.Stop(), 1);
  ASSERT_OK(decoded);
}

TEST(Allocations, DecodeSubackCopiesReasonCodesOnce) {
  std::string body = Hex("0001") + std::string(5000, '\x01');
  AllocationCounter counter;
  absl::StatusOr<Suback> decoded = DecodeSuback(body, Version::kV311);
  EXPECT_EQ(counter.Stop(), 1);
  ASSERT_OK(decoded);
}

}  // namespace
}  // namespace mqtt
