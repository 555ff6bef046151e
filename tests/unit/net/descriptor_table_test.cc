// SPDX-License-Identifier: Apache-2.0
#include "node/net/descriptor_table.h"

#include <sys/resource.h>

#include "gtest/gtest.h"

namespace mqtt::net {
namespace {

rlimit Limit() {
  rlimit limit{};
  EXPECT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  return limit;
}

TEST(DescriptorTableTest, RaisesTheSoftLimitToTheHardLimit) {
  rlimit before = Limit();
  if (before.rlim_max < 512 || before.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "hard limit";
  rlimit lowered = before;
  lowered.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  absl::StatusOr<DescriptorTable> table = PrepareDescriptorTable(0);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->raised_from, 256u);
  EXPECT_EQ(table->limit, before.rlim_max);
  EXPECT_EQ(Limit().rlim_cur, before.rlim_max);
}

TEST(DescriptorTableTest, GrowsTheTableToTheExpectedSizeAtOnce) {
  const uint64_t limit = Limit().rlim_max;
  const uint64_t expected = std::min<uint64_t>(limit, 8192);
  const uint64_t before = DescriptorTableSlots();
  ASSERT_GT(before, 0u) << "FDSize missing from /proc/self/status";
  if (before >= expected) GTEST_SKIP() << "table already holds " << before;
  absl::StatusOr<DescriptorTable> table = PrepareDescriptorTable(expected);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_GE(table->slots, expected);
  EXPECT_GE(DescriptorTableSlots(), expected);
}

TEST(DescriptorTableTest, AnExpectationAboveTheLimitStopsAtTheLimit) {
  const rlimit before = Limit();
  absl::StatusOr<DescriptorTable> table = PrepareDescriptorTable(uint64_t{1} << 40);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->limit, before.rlim_max);
  EXPECT_GE(table->slots, table->limit);
  // Each test runs in a process of its own (ctest): the soft limit is the one it was started with.
  EXPECT_EQ(table->raised_from, before.rlim_cur < before.rlim_max ? before.rlim_cur : 0u);
}

}  // namespace
}  // namespace mqtt::net
