// 1 GiB each way through snigated, byte-exact, with the client's FIN sent while the backend's
// half of the response is still to come: the FIN must not cut it.
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <future>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

constexpr std::size_t kBlock = 1 << 20;
constexpr std::size_t kBlocks = 1024;  // 1 GiB
const std::string kHead = "POST /bulk HTTP/1.1\r\nHost: bulk.test\r\n\r\n";

// Block i of the stream `seed`: deterministic, so the receiver checks every byte without
// keeping a copy.
void fill(std::uint64_t seed, std::size_t block, std::vector<char>& out) {
  out.resize(kBlock);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + block;
  for (std::size_t i = 0; i < kBlock; i += 8) {
    x += 0x9e3779b97f4a7c15ULL;  // splitmix64
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    std::memcpy(out.data() + i, &z, 8);
  }
}

bool send_blocks(int fd, std::uint64_t seed, std::size_t from, std::size_t to) {
  std::vector<char> block;
  for (std::size_t i = from; i < to; ++i) {
    fill(seed, i, block);
    if (!send_all(fd, block.data(), block.size())) return false;
  }
  return true;
}

// Reads until EOF; returns the byte count, or a description of the first wrong byte.
std::string receive_blocks(int fd, std::uint64_t seed) {
  std::vector<char> expected, got(kBlock);
  std::size_t total = 0, filled = 0, block = 0;
  fill(seed, 0, expected);
  for (;;) {
    ssize_t n = recv(fd, got.data() + filled, kBlock - filled, 0);
    if (n < 0) return fmt::format("recv error after {} bytes: {}", total, std::strerror(errno));
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
    total += static_cast<std::size_t>(n);
    if (filled == kBlock || total == kBlock * kBlocks) {
      if (std::memcmp(got.data(), expected.data(), filled) != 0)
        return fmt::format("wrong bytes in block {}", block);
      filled = 0;
      fill(seed, ++block, expected);
    }
  }
  if (filled && std::memcmp(got.data(), expected.data(), filled) != 0)
    return fmt::format("wrong bytes in block {}", block);
  return std::to_string(total);
}

class Bulk : public ::testing::TestWithParam<const char*> {};

TEST_P(Bulk, OneGibEachWayByteExactWithHalfClose) {
  TempDir dir;
  std::promise<std::string> backend_saw;
  std::atomic<bool> backend_sent{false};
  RawServer backend("127.0.3.1", [&](int fd) {
    std::string head;
    char c;
    while (head.size() < kHead.size() && recv(fd, &c, 1, 0) == 1) head += c;
    // Half the response now, concurrently with the upload; the rest only after the client's
    // FIN has arrived, so it flows through a half-closed connection.
    auto first_half = std::async(std::launch::async, [&] { return send_blocks(fd, 2, 0, kBlocks / 2); });
    std::string saw = head == kHead ? receive_blocks(fd, 1) : "wrong head: " + head;
    bool ok = first_half.get() && send_blocks(fd, 2, kBlocks / 2, kBlocks);
    backend_sent = ok;
    shutdown(fd, SHUT_WR);
    backend_saw.set_value(saw);
  });
  Snigated d(dir, http_config(backend.port(), "workers = 1"), {"--relay", GetParam()});

  const auto start = std::chrono::steady_clock::now();
  int fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.2", 60s);
  auto upload = std::async(std::launch::async, [&] {
    bool ok = send_all(fd, kHead) && send_blocks(fd, 1, 0, kBlocks);
    shutdown(fd, SHUT_WR);
    return ok;
  });
  const std::string client_saw = receive_blocks(fd, 2);
  EXPECT_TRUE(upload.get());
  close(fd);
  auto saw = backend_saw.get_future();
  ASSERT_EQ(saw.wait_for(60s), std::future_status::ready);
  const std::string gib = std::to_string(kBlock * kBlocks);
  EXPECT_EQ(saw.get(), gib) << "client -> backend";
  EXPECT_EQ(client_saw, gib) << "backend -> client";
  EXPECT_TRUE(backend_sent);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 240s);
  EXPECT_NE(d.wait_access(std::regex(fmt::format(R"(in={} out={} .*relay={} end=clean)",
                                                 kBlock * kBlocks + kHead.size(),
                                                 kBlock * kBlocks, GetParam()))),
            "")
      << d.access_log();
}

INSTANTIATE_TEST_SUITE_P(Relay, Bulk, ::testing::Values("copy", "splice"));

}  // namespace
}  // namespace snigate::itest
