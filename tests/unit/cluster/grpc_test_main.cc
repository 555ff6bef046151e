// SPDX-License-Identifier: Apache-2.0
// main() for the cluster test binaries. gRPC 1.51 (Debian) leaves its threads running when
// main() returns, and they can run while static destructors do. The tests' own objects are all
// destroyed by then, so the process ends with quick_exit: no static destructors, nothing to
// race with. (LeakSanitizer, which runs at exit, is skipped for these binaries as a result.)
#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  std::fflush(nullptr);
  std::quick_exit(result);
}
