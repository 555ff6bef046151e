// SPDX-License-Identifier: Apache-2.0
// Cluster TLS settings (cluster/cluster_tls.h): all three files or none, each readable PEM. The
// handshakes themselves are tested with real nodes (tests/integration/cluster/62_cluster_tls.py).
#include "cluster/cluster_tls.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace mqtt::cluster {
namespace {

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "cluster_tls_test_" + name;
  std::ofstream(path) << text;
  return path;
}

const std::string kPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

TEST(ClusterTlsTest, NoFilesIsPlaintext) {
  EXPECT_TRUE(ValidateClusterTls({}).ok());
  ASSERT_TRUE(UseClusterTls({}).ok());
  EXPECT_FALSE(ClusterTlsEnabled());
}

TEST(ClusterTlsTest, AMissingFileIsNamedByItsKeyAndFlag) {
  const std::string pem = WriteTemp("a.pem", kPem);
  absl::Status s = ValidateClusterTls({pem, "", pem});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("cluster.tls.key_file (--cluster-tls-key) is not set"),
            std::string::npos)
      << s;
  s = ValidateClusterTls({"", pem, pem});
  EXPECT_NE(s.message().find("cluster.tls.cert_file (--cluster-tls-cert)"), std::string::npos);
  s = ValidateClusterTls({pem, pem, ""});
  EXPECT_NE(s.message().find("cluster.tls.ca_file (--cluster-tls-ca)"), std::string::npos);
}

TEST(ClusterTlsTest, AFileThatIsNoPemIsRefused) {
  const std::string pem = WriteTemp("b.pem", kPem);
  const std::string junk = WriteTemp("junk.key", "not a key\n");
  absl::Status s = ValidateClusterTls({pem, junk, pem});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("holds no PEM data"), std::string::npos) << s;
}

TEST(ClusterTlsTest, AnUnreadableFileIsRefusedAndNothingChanges) {
  const std::string pem = WriteTemp("c.pem", kPem);
  absl::Status s = UseClusterTls({pem, pem, "/nonexistent/ca.pem"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/nonexistent/ca.pem"), std::string::npos) << s;
  EXPECT_FALSE(ClusterTlsEnabled());
}

TEST(ClusterTlsTest, AnEmptyServerNameIsRefused) {
  const std::string pem = WriteTemp("d.pem", kPem);
  EXPECT_FALSE(ValidateClusterTls({pem, pem, pem, ""}).ok());
}

}  // namespace
}  // namespace mqtt::cluster
