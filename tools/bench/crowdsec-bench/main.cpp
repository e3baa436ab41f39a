// CrowdSec bouncer benchmark, one run (root): a real Local API (vm-tests/lib/local_api.h) in
// a namespace of its own holds N decisions (cscli decisions import); the bouncer's steps are
// then timed one by one as the Bouncer runs them, against the real pinned tries (bpffs) and a
// real SQLite store:
//   startup: GET /v1/decisions/stream?startup=true, parse, book, BanManager::apply_owned;
//   deltas:  D more decisions imported, one delta pull, parse, book, apply_owned;
//   deletes: D decisions deleted in LAPI, one delta pull and its lifts.
// Namespace sg-csb-PID (loopback only), pins under /sys/fs/bpf/sg-csb-PID.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "bans/ban_manager.h"
#include "crowdsec/decision_book.h"
#include "crowdsec/lapi_http.h"
#include "local_api.h"
#include "netns.h"

namespace {

using namespace snigate;
using Steady = std::chrono::steady_clock;

double ms_since(Steady::time_point t) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t).count();
}

// N distinct IPv4 hosts from 10.64.0.0 up (never routed: LAPI only stores them).
std::string address(std::size_t i) {
  const auto n = 0x0A400000u + static_cast<std::uint32_t>(i);
  return std::to_string(n >> 24) + "." + std::to_string((n >> 16) & 255) + "." +
         std::to_string((n >> 8) & 255) + "." + std::to_string(n & 255);
}

bool import(vmtest::LocalApi& lapi, const std::string& dir, std::size_t from, std::size_t n) {
  const std::string csv = dir + "/import.csv";
  {
    std::ofstream out(csv);
    out << "value\n";
    for (std::size_t i = from; i < from + n; ++i) out << address(i) << "\n";
  }
  auto t = Steady::now();
  auto r = lapi.cscli({"decisions", "import", "-i", csv, "--duration", "4h", "--reason", "bench"},
                      std::chrono::minutes(10));
  if (r.exit_code != 0) {
    std::fprintf(stderr, "crowdsec-bench: cscli decisions import: %s\n", r.output.c_str());
    return false;
  }
  std::printf("imported %zu decisions into LAPI in %.0f ms (cscli, not snigate)\n", n, ms_since(t));
  return true;
}

// One pull as the Bouncer makes it, each step timed.
bool pull(crowdsec::LapiHttp& http, const std::string& ns, const std::string& key,
          crowdsec::DecisionBook& book, bans::BanManager& manager, bool startup, const char* what) {
  const auto t0 = Steady::now();
  crowdsec::HttpReply reply;
  vmtest::in_netns(ns, [&] {
    reply = http.get(std::string("/v1/decisions/stream?scopes=ip,range") + (startup ? "&startup=true" : ""),
                     {{"X-Api-Key", key}});
  });
  const double fetch = ms_since(t0);
  if (!reply.ok()) {
    std::fprintf(stderr, "crowdsec-bench: pull: %s (HTTP %u)\n", reply.error.c_str(), reply.status);
    return false;
  }
  const auto t1 = Steady::now();
  std::string error;
  auto body = crowdsec::parse_stream(reply.body, error);
  if (!body) {
    std::fprintf(stderr, "crowdsec-bench: %s\n", error.c_str());
    return false;
  }
  const double parse = ms_since(t1);
  const auto t2 = Steady::now();
  const auto now = bans::Clock::now();
  auto changes = startup ? book.resync(*body, now, manager.held_by(crowdsec::kSourceFamily))
                         : book.apply(*body, now);
  const double booked = ms_since(t2);
  const auto t3 = Steady::now();
  auto change = manager.apply_owned(crowdsec::kSourceFamily, changes.bans, changes.lifts);
  const double applied = ms_since(t3);
  std::printf("%s: %zu new + %zu deleted in %zu bytes -> %zu banned, %zu lifted | LAPI answer "
              "%.1f ms, parse %.1f ms, book %.1f ms, maps+store %.1f ms | snigate's part %.1f ms\n",
              what, body->added.size(), body->deleted.size(), reply.body.size(), change.banned,
              change.lifted, fetch, parse, booked, applied, parse + booked + applied);
  return true;
}

int run(std::size_t n, std::size_t deltas) {
  spdlog::set_level(spdlog::level::warn);
  if (auto why = vmtest::LocalApi::unavailable(); !why.empty()) {
    std::fprintf(stderr, "crowdsec-bench: %s\n", why.c_str());
    return 2;
  }
  const std::string ns = "sg-csb-" + std::to_string(::getpid());
  vmtest::run("ip netns add " + ns);
  vmtest::run("ip -n " + ns + " link set lo up");
  const std::string pin_root = "/sys/fs/bpf/" + ns;
  std::string tmpl = (std::filesystem::temp_directory_path() / "sg-csb-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  struct Cleanup {
    std::string ns, pins, dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(pins, ec);
      std::filesystem::remove_all(dir, ec);
      std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
    }
  } cleanup{ns, pin_root, dir};

  std::filesystem::create_directories(dir + "/lapi");
  vmtest::LocalApi lapi(ns, "127.0.0.1:8090", dir + "/lapi");
  std::string error;
  if (!lapi.start(error)) {
    std::fprintf(stderr, "crowdsec-bench: %s\n", error.c_str());
    return 1;
  }
  const auto key = lapi.add_bouncer("bench");
  lapi.add_machine("bench", "bench-password-0123456789");
  if (!import(lapi, dir, 0, n)) return 1;

  bans::BansConfig cfg;
  cfg.pin_dir = pin_root + "/v1";
  cfg.store = dir + "/bans.db";
  cfg.sweep_interval = std::chrono::seconds(0);
  auto manager = bans::BanManager::open(cfg, nullptr, error);
  if (!manager) {
    std::fprintf(stderr, "crowdsec-bench: %s\n", error.c_str());
    return 1;
  }
  crowdsec::LapiUrl url{"127.0.0.1", "8090", "", "http://127.0.0.1:8090"};
  crowdsec::LapiHttp http(url, std::chrono::seconds(60));
  crowdsec::DecisionBook book{crowdsec::DecisionFilter{}};
  if (!pull(http, ns, key, book, *manager, true, "startup")) return 1;
  if (!import(lapi, dir, n, deltas)) return 1;
  if (!pull(http, ns, key, book, *manager, false, "deltas")) return 1;
  // The first 1,024.
  auto r = lapi.cscli({"decisions", "delete", "--range", "10.64.0.0/22", "--contained"},
                      std::chrono::minutes(2));
  if (r.exit_code != 0) {
    std::fprintf(stderr, "crowdsec-bench: cscli decisions delete: %s\n", r.output.c_str());
    return 1;
  }
  if (!pull(http, ns, key, book, *manager, false, "deletes")) return 1;
  // A second startup (a restart of either side): everything is already held.
  crowdsec::DecisionBook again{crowdsec::DecisionFilter{}};
  if (!pull(http, ns, key, again, *manager, true, "resync")) return 1;
  std::printf("bans held from CrowdSec: %zu\n", manager->held_by(crowdsec::kSourceFamily).size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 100'000;
  const std::size_t deltas = argc > 2 ? std::stoul(argv[2]) : 1'000;
  return run(n, deltas);
}
