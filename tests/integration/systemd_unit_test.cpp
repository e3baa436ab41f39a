// contrib/systemd/snigated.service as systemd reads it: `systemd-analyze verify` exits 0 only for
// a unit it can load, but merely warns about an unknown key or a bad value, so nothing may be
// printed either. The installed unit is verified as installed (man pages too) by
// tools/ci/package.sh; here the build's snigated stands in for /usr/sbin/snigated.
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

TEST(SystemdUnit, VerifiesWithoutAWord) {
  if (run({"sh", "-c", "command -v systemd-analyze"}).exit_code != 0)
    GTEST_SKIP() << "SKIPPED LOUDLY: systemd-analyze is not installed (Debian: systemd)";
  TempDir dir;
  std::string unit = read_file(fs::path(SNIGATE_SOURCE_DIR) / "contrib/systemd/snigated.service");
  const std::string installed = "/usr/sbin/snigated";
  const auto at = unit.find(installed);
  ASSERT_NE(at, std::string::npos) << "the unit no longer runs " << installed;
  unit.replace(at, installed.size(), SNIGATED_PATH);
  write_file(dir / "snigated.service", unit);
  RunResult r = run({"systemd-analyze", "verify", "--man=no", (dir / "snigated.service").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
}

}  // namespace
}  // namespace snigate::itest
