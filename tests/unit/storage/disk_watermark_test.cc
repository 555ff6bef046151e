// SPDX-License-Identifier: Apache-2.0
// DiskWatermark with an injected probe (no disk is filled), and StatDisk on a real directory.
#include "storage/disk_watermark.h"

#include "gtest/gtest.h"

namespace mqtt::storage {
namespace {

TEST(DiskWatermarkTest, ExceededBelowTheReserveInBytesAndClearedAbove) {
  DiskSpace space{2000, 10000};
  DiskWatermark watermark({/*bytes=*/1000, /*percent=*/0}, [&] { return space; });
  EXPECT_EQ(*watermark.Check(), false) << "no change: still not exceeded";
  EXPECT_FALSE(watermark.exceeded());
  space.available_bytes = 999;
  EXPECT_EQ(*watermark.Check(), true);
  EXPECT_TRUE(watermark.exceeded());
  EXPECT_EQ(watermark.available_bytes(), 999u);
  EXPECT_EQ(*watermark.Check(), false);
  space.available_bytes = 1000;
  EXPECT_EQ(*watermark.Check(), true);
  EXPECT_FALSE(watermark.exceeded());
}

TEST(DiskWatermarkTest, PercentOfTheFileSystem) {
  DiskSpace space{400, 10000};
  DiskWatermark watermark({0, 5}, [&] { return space; });
  EXPECT_EQ(watermark.ReserveBytes(10000), 500u);
  ASSERT_TRUE(watermark.Check().ok());
  EXPECT_TRUE(watermark.exceeded());
}

TEST(DiskWatermarkTest, ZeroIsOffAndAProbeErrorKeepsTheState) {
  DiskWatermark off({0, 0}, [] { return DiskSpace{0, 10000}; });
  ASSERT_TRUE(off.Check().ok());
  EXPECT_FALSE(off.exceeded());
  bool fail = false;
  DiskWatermark watermark({0, 100}, [&]() -> absl::StatusOr<DiskSpace> {
    if (fail) return absl::UnavailableError("statvfs failed");
    return DiskSpace{10, 10000};
  });
  ASSERT_TRUE(watermark.Check().ok());
  EXPECT_TRUE(watermark.exceeded());
  fail = true;
  EXPECT_FALSE(watermark.Check().ok());
  EXPECT_TRUE(watermark.exceeded());
}

TEST(DiskWatermarkTest, StatDiskOfARealDirectory) {
  absl::StatusOr<DiskSpace> space = StatDisk("/tmp");
  ASSERT_TRUE(space.ok()) << space.status();
  EXPECT_GT(space->total_bytes, 0u);
  EXPECT_LE(space->available_bytes, space->total_bytes);
  EXPECT_FALSE(StatDisk("/no/such/dir").ok());
}

}  // namespace
}  // namespace mqtt::storage
