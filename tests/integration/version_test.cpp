// `--version` of snigated and snigatectl: the project version and the git commit the build was
// configured from, on one line, exit 0 (no configuration read, no subcommand needed).
#include <gtest/gtest.h>

#include "integration/harness.h"
#include "snigate/version.h"

namespace snigate::itest {
namespace {

void expect_version(const std::string& program, const std::string& path) {
  RunResult r = run({path, "--version"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, program + " " + kVersion + " (commit " + kGitCommit + ")\n");
  // What the build put there has the expected shape: x.y.z, and a describe output or "unknown".
  EXPECT_TRUE(std::regex_match(std::string(kVersion), std::regex(R"(\d+\.\d+\.\d+)"))) << kVersion;
  EXPECT_TRUE(std::regex_match(std::string(kGitCommit),
                               std::regex(R"((.*-g)?[0-9a-f]{7,}(-dirty)?|unknown)")))
      << kGitCommit;
}

TEST(Version, SnigatedPrintsVersionAndCommit) { expect_version("snigated", SNIGATED_PATH); }

TEST(Version, SnigatectlPrintsVersionAndCommit) { expect_version("snigatectl", SNIGATECTL_PATH); }

}  // namespace
}  // namespace snigate::itest
