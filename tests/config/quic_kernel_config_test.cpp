// [daemon] quic_kernel_interfaces: the interfaces the kernel path for routed QUIC flows is
// attached to; none by default, so a configuration that never asked for it changes nothing.
#include <gtest/gtest.h>

#include "config/config.h"

namespace snigate::config {
namespace {

constexpr const char* kListener = R"(
[[listener]]
listen = "127.0.2.1:443"
protocol = "quic"
table = "edge"
[table.edge]
default = "a"
[backend.a]
servers = ["127.0.2.10:443"]
)";

TEST(QuicKernelConfig, NamesTheInterfacesAndIsEmptyByDefault) {
  EXPECT_TRUE(load_string(kListener, "plain.toml").daemon.quic_kernel_interfaces.empty());
  Config c = load_string(std::string("[daemon]\nquic_kernel_interfaces = [\"eth0\", \"lo\"]\n") +
                             kListener,
                         "ok.toml");
  EXPECT_EQ(c.daemon.quic_kernel_interfaces, (std::vector<std::string>{"eth0", "lo"}));
}

TEST(QuicKernelConfig, ANonStringIsRefusedAtItsLine) {
  try {
    load_string(std::string("[daemon]\nworkers = 1\nquic_kernel_interfaces = [\"eth0\", 3]\n") +
                    kListener,
                "bad.toml");
    FAIL() << "loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.toml:3:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("quic_kernel_interfaces"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace snigate::config
