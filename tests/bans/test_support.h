#pragma once
// What the ban unit tests share: a scratch directory, a manager over FakeBanMap + a real
// SQLite file + ManualClock, and address helpers.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "bans/ban_manager.h"
#include "bans/fake_ban_map.h"

namespace snigate::bans::testing {

inline boost::asio::ip::address addr(const char* text) {
  return boost::asio::ip::make_address(text);
}
inline net::Prefix prefix(const char* text) { return *net::Prefix::parse(text); }

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "snigate-bans-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const char* name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The pinned maps outlive a daemon run; this hands a manager a view of a FakeBanMap the test
// keeps, so a second manager finds what the first one left.
class PinnedFake final : public BanMap {
 public:
  explicit PinnedFake(std::shared_ptr<FakeBanMap> pins) : pins_(std::move(pins)) {}
  bool put(const MapBan& ban, std::string& error) override { return pins_->put(ban, error); }
  bool erase(const net::Prefix& prefix) override { return pins_->erase(prefix); }
  std::optional<MapBan> longest_match(const net::Prefix& key) const override {
    return pins_->longest_match(key);
  }
  std::vector<MapBan> entries() const override { return pins_->entries(); }
  MapTotals totals() const override { return pins_->totals(); }
  std::vector<std::string> enforcement() const override { return {}; }

 private:
  std::shared_ptr<FakeBanMap> pins_;
};

inline BansConfig test_config() {
  BansConfig cfg;
  cfg.sweep_interval = std::chrono::seconds(0);
  cfg.ignore = {*net::Prefix::parse("198.51.100.0/24")};
  return cfg;
}

// No sweeper thread: tests call sweep() when the clock says so.
inline std::unique_ptr<BanManager> open_manager(std::shared_ptr<FakeBanMap> pins, const std::string& db,
                                                std::shared_ptr<ManualClock> clock,
                                                conns::ConnRegistry* registry = nullptr,
                                                BansConfig cfg = test_config(),
                                                StoreOptions options = {}) {
  std::string error;
  auto store = BanStore::open(db, error, options);
  EXPECT_TRUE(store) << error;
  if (!store) return nullptr;
  auto manager = BanManager::create(cfg, std::make_unique<PinnedFake>(std::move(pins)),
                                    std::move(store), std::move(clock),
                                    registry, error);
  EXPECT_TRUE(manager) << error;
  return manager;
}

inline BanRequest request(const char* text, std::optional<std::chrono::seconds> duration = {},
                          std::string source = "jail:sshd") {
  BanRequest r;
  r.prefix = prefix(text);
  r.duration = duration;
  r.reason = "test";
  r.source = std::move(source);
  return r;
}

}  // namespace snigate::bans::testing
