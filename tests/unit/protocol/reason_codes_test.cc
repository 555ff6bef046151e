// SPDX-License-Identifier: Apache-2.0
// The names of reason codes (node/protocol/reason_codes.h) that logs and `mqttctl bridges` show.
#include "node/protocol/reason_codes.h"

#include <string>

#include "gtest/gtest.h"

namespace mqtt {
namespace {

TEST(ReasonCodeNameTest, NamesAsTheSpecificationDoes) {
  EXPECT_STREQ(ReasonCodeName(rc::kSuccess), "Success");
  EXPECT_STREQ(ReasonCodeName(rc::kNotAuthorized), "Not authorized");
  EXPECT_STREQ(ReasonCodeName(rc::kBadUserNameOrPassword), "Bad User Name or Password");
  EXPECT_STREQ(ReasonCodeName(rc::kSessionTakenOver), "Session taken over");
  EXPECT_STREQ(ReasonCodeName(rc::kQuotaExceeded), "Quota exceeded");
  EXPECT_STREQ(ReasonCodeName(rc::kWildcardSubscriptionsNotSupported),
               "Wildcard Subscriptions not supported");
}

TEST(ReasonCodeNameTest, EveryErrorCodeFrom0x80To0xA2HasAName) {
  // The specification defines every code from 0x80 to 0xA2.
  for (int code = 0x80; code <= 0xA2; ++code) {
    EXPECT_NE(std::string(ReasonCodeName(static_cast<uint8_t>(code))), "unknown reason code")
        << std::hex << code;
  }
}

TEST(ReasonCodeNameTest, UndefinedCodesAreUnknown) {
  EXPECT_STREQ(ReasonCodeName(0x03), "unknown reason code");
  EXPECT_STREQ(ReasonCodeName(0xA3), "unknown reason code");
  EXPECT_STREQ(ReasonCodeName(0xFF), "unknown reason code");
}

TEST(ConnackReturnCodeNameTest, NamesTheSixReturnCodesOf311) {
  EXPECT_STREQ(ConnackReturnCodeName(v3::kAccepted), "Connection accepted");
  EXPECT_STREQ(ConnackReturnCodeName(v3::kNotAuthorized), "Connection refused, not authorized");
  EXPECT_STREQ(ConnackReturnCodeName(v3::kBadUsernameOrPassword),
               "Connection refused, bad user name or password");
  EXPECT_STREQ(ConnackReturnCodeName(6), "unknown return code");
}

}  // namespace
}  // namespace mqtt
