// SPDX-License-Identifier: Apache-2.0
#include "node/http/health.h"

namespace mqtt::http {

std::string Readiness::NotReadyReason() const {
  if (shutting_down_.load()) return "shutting down";
  if (checks_.storage_open && !checks_.storage_open()) return "storage not open";
  if (!listening_.load()) return "listeners not up";
  if (checks_.cluster) {
    if (std::string why = checks_.cluster(); !why.empty()) return "cluster: " + why;
  }
  return {};
}

Response Readiness::Healthz() const { return TextResponse(200, "ok\n"); }

Response Readiness::Readyz() const {
  std::string reason = NotReadyReason();
  if (reason.empty()) return TextResponse(200, "ready\n");
  return TextResponse(503, reason + "\n");
}

}  // namespace mqtt::http
