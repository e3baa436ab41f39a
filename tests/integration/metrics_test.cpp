// GET /metrics as Prometheus meets it: a daemon with [metrics] on, driven through with known
// connections, a ban, a refused control request and a watched log line; the scraped figures
// are the ones predicted, equal to `snigatectl stats`, valid for `promtool check metrics`; a
// real Prometheus scrapes the daemon and answers a PromQL query with the connection count;
// every metric the Grafana dashboard queries is in the output.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

using nlohmann::json;

const std::string kRequest = "GET / HTTP/1.1\r\nHost: m.test\r\n\r\n";
const std::string kAnswer = "served";

// The absolute path of `tool`, or "" when it is not installed.
std::string which(const std::string& tool) {
  RunResult r = run({"sh", "-c", "command -v " + tool});
  return r.exit_code == 0 ? r.output.substr(0, r.output.find('\n')) : "";
}

std::uint16_t free_port(const std::string& ip) {
  RawServer probe(ip, [](int) {});
  return probe.port();
}

// One scrape: the body of GET /metrics, or "" when the answer was not a 200.
std::string scrape(std::uint16_t port) {
  int fd = connect_to("127.0.0.1", port, {}, 5s);
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::string reply = recv_until_eof(fd, 4 << 20);
  close(fd);
  if (reply.rfind("HTTP/1.1 200 OK\r\n", 0) != 0) return {};
  return reply.substr(reply.find("\r\n\r\n") + 4);
}

// "name{labels}" -> value, for every sample line.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

// The names of the series in `text` (NAME of NAME{...}), _bucket/_sum/_count included.
std::set<std::string> series_names(const std::string& text) {
  std::set<std::string> out;
  for (const auto& [series, value] : samples(text)) out.insert(series.substr(0, series.find_first_of("{ ")));
  return out;
}

// snigated with metrics, bans (accept-time, in temp files), a jail on a temp log, and an http
// listener in front of a backend that answers "served" to each request head.
class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = std::make_unique<RawServer>("127.0.3.1", [](int fd) {
      std::string head;
      char c;
      while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
      send_all(fd, kAnswer);
    });
    write_file(dir_ / "app.log", "");
    const std::string toml = fmt::format(
        "[daemon]\nworkers = 2\naccess_log = \"@ACCESS_LOG@\"\n"
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.3.1:0\"\nprotocol = \"http\"\n"
        "table = \"t\"\n[table.t]\ndefault = \"b\"\n[backend.b]\nservers = [\"127.0.3.1:{}\"]\n"
        "[bans]\nstore = \"{}\"\npin_dir = \"{}\"\n"
        "[metrics]\nlisten = \"127.0.0.1:0\"\n"
        // 'app' in single quotes: the harness waits for a listener of each name = "...".
        "[[jail]]\nname = 'app'\nlogpath = \"{}\"\nfailregex = \"^login failed from <HOST>$\"\n"
        "maxretry = 5\n",
        backend_->port(), (dir_ / "bans.db").string(), (dir_ / "pins").string(),
        (dir_ / "app.log").string());
    daemon_ = std::make_unique<Snigated>(dir_, toml);
    metrics_port_ = daemon_->port("metrics");
  }

  RunResult ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{SNIGATECTL_PATH, "-c", daemon_->config_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  // `n` requests from 127.0.3.50, each answered and closed; true when all were served.
  bool drive(int n) {
    int served = 0;
    for (int i = 0; i < n; ++i) {
      int fd = connect_to("127.0.3.1", daemon_->port("web"), "127.0.3.50", 5s);
      send_all(fd, kRequest);
      served += recv_until_eof(fd, 64) == kAnswer;
      close(fd);
    }
    return served == n;
  }

  // Scrapes until `done` holds of the samples (at most 10 s); the last scrape's text.
  std::string scrape_until(const std::function<bool(const std::map<std::string, double>&)>& done) {
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    do {
      text = scrape(metrics_port_);
      if (done(samples(text))) break;
      std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return text;
  }

  TempDir dir_;
  std::unique_ptr<RawServer> backend_;
  std::unique_ptr<Snigated> daemon_;
  std::uint16_t metrics_port_ = 0;
};

TEST_F(MetricsTest, ScrapedFiguresAreThoseDrivenAndThoseOfSnigatectlStats) {
  constexpr int kServed = 5;
  ASSERT_TRUE(drive(kServed));
  RunResult ban = ctl({"ban", "127.0.3.77", "--reason", "metrics test"});
  ASSERT_EQ(ban.exit_code, 0) << ban.output;
  // Refused at accept: the client never reaches the backend.
  int fd = connect_to("127.0.3.1", daemon_->port("web"), "127.0.3.77", 5s);
  send_all(fd, kRequest);
  EXPECT_EQ(recv_until_eof(fd, 64), "");
  close(fd);
  EXPECT_NE(ctl({"unban", "127.0.3.78"}).exit_code, 0);  // no such ban: a refused request
  {
    std::ofstream log(dir_ / "app.log", std::ios::app);
    log << "login failed from 127.0.3.99\n" << "an unrelated line\n";
  }

  const std::string b_server = fmt::format("127.0.3.1:{}", backend_->port());
  const std::string text = scrape_until([](const auto& s) {
    auto at = [&](const std::string& k) { return s.count(k) ? s.at(k) : -1; };
    return at(R"(snigate_connections_ended_total{listener="web",reason="banned"})") == 1 &&
           at(R"(snigate_connections_active{listener="web"})") == 0 &&
           at(R"(snigate_watch_lines_total{jail="app"})") == 2;
  });
  auto s = samples(text);
  auto at = [&](const std::string& k) {
    EXPECT_TRUE(s.count(k)) << "no series " << k << " in:\n" << text;
    return s.count(k) ? s.at(k) : -1;
  };
  EXPECT_EQ(at(R"(snigate_connections_accepted_total{listener="web"})"), kServed + 1);
  EXPECT_EQ(at(R"(snigate_connections_active{listener="web"})"), 0);
  EXPECT_EQ(at(R"(snigate_connections_ended_total{listener="web",reason="clean"})"), kServed);
  EXPECT_EQ(at(R"(snigate_connections_ended_total{listener="web",reason="banned"})"), 1);
  EXPECT_EQ(at(R"(snigate_relayed_bytes_total{listener="web",backend="b",direction="to_backend"})"),
            kServed * kRequest.size());
  EXPECT_EQ(at(R"(snigate_relayed_bytes_total{listener="web",backend="b",direction="to_client"})"),
            kServed * kAnswer.size());
  EXPECT_EQ(at(R"(snigate_backend_connections_total{backend="b"})"), kServed);
  EXPECT_EQ(at(R"(snigate_server_connects_total{backend="b",server=")" + b_server + "\"}"), kServed);
  EXPECT_EQ(at(R"(snigate_server_connect_failures_total{backend="b",server=")" + b_server + "\"}"), 0);
  EXPECT_EQ(at(R"(snigate_server_connect_duration_seconds_count{backend="b",server=")" + b_server + "\"}"),
            kServed);
  EXPECT_EQ(at(R"(snigate_server_up{backend="b",server=")" + b_server + "\"}"), 1);
  // The banned client never got to send its head.
  EXPECT_EQ(at(R"(snigate_preread_duration_seconds_count{listener="web"})"), kServed);
  EXPECT_EQ(at(R"(snigate_preread_duration_seconds_bucket{listener="web",le="+Inf"})"), kServed);
  // auto copies and splices bulk, over the kernel relay for interactive connections where
  // the daemon may load its programs (root); these short ones stay on copy either way.
  const std::string auto_over_sockmap = R"(snigate_relay_info{requested="auto",mode="sockmap"})";
  EXPECT_EQ(at(s.count(auto_over_sockmap) ? auto_over_sockmap
                                          : R"(snigate_relay_info{requested="auto",mode="splice"})"),
            1);
  EXPECT_EQ(at(R"(snigate_relay_connections_total{mode="copy"})"), kServed);
  // Their bursts never filled a buffer: no pipe taken, none short; the pool is bounded.
  EXPECT_EQ(at(R"(snigate_relay_pipes_open)"), 0);
  EXPECT_GT(at(R"(snigate_relay_pipes_max)"), 0);
  EXPECT_EQ(at(R"(snigate_relay_bursts_by_copy_total)"), 0);
  EXPECT_EQ(at(R"(snigate_bans_active)"), 1);
  EXPECT_EQ(at(R"(snigate_ban_drops_total{stage="accept"})"), 1);
  EXPECT_EQ(at(R"(snigate_watch_lines_total{jail="app"})"), 2);
  EXPECT_EQ(at(R"(snigate_watch_matches_total{jail="app"})"), 1);
  EXPECT_EQ(at(R"(snigate_requests_refused_total{channel="control"})"), 1);
  // No client address, no SNI or Host in any label.
  EXPECT_EQ(text.find("127.0.3.50"), std::string::npos);
  EXPECT_EQ(text.find("127.0.3.77"), std::string::npos);
  EXPECT_EQ(text.find("m.test"), std::string::npos);

  // snigatectl stats reads the same collection.
  RunResult stats = ctl({"stats", "--json"});
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  auto j = json::parse(stats.output);
  EXPECT_EQ(j["connections"]["accepted"], kServed + 1);
  EXPECT_EQ(j["listeners"]["web"]["ended"]["clean"], kServed);
  EXPECT_EQ(j["backends"]["b"]["bytes_to_backend"], kServed * kRequest.size());
  EXPECT_EQ(j["servers"]["b " + b_server]["connects"], kServed);
  EXPECT_EQ(j["bans"]["refused_at_accept"], 1);
  EXPECT_EQ(j["jails"]["app"]["matches"], 1);
  EXPECT_EQ(j["control"]["refused"], 1);

  const std::string promtool = which("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; tools/install-deps.sh "
                    "installs it): the exposition text was not checked";
  }
  write_file(dir_ / "metrics.txt", text);
  RunResult check = run({"sh", "-c", promtool + " check metrics < " + (dir_ / "metrics.txt").string()});
  EXPECT_EQ(check.exit_code, 0) << check.output << "\n" << text;
}

TEST_F(MetricsTest, NonMetricsRequestsGet404) {
  int fd = connect_to("127.0.0.1", metrics_port_, {}, 5s);
  send_all(fd, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(recv_until_eof(fd).rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  close(fd);
}

// Every metric a panel of contrib/grafana/snigate.json queries is in a real scrape: renaming
// a metric without the dashboard (or the other way round) fails here.
TEST_F(MetricsTest, EveryMetricTheDashboardQueriesExists) {
  ASSERT_TRUE(drive(1));
  // The connection's end is counted once the daemon sees the client's close, which may come
  // after the client has its answer: scrape until it is (a single scrape raced it).
  const std::set<std::string> have = series_names(scrape_until([](const auto& s) {
    return std::any_of(s.begin(), s.end(), [](const auto& sample) {
      return sample.first.rfind("snigate_relayed_bytes_total", 0) == 0;
    });
  }));
  ASSERT_FALSE(have.empty());
  std::ifstream in(fs::path(SNIGATE_SOURCE_DIR) / "contrib/grafana/snigate.json");
  ASSERT_TRUE(in) << "contrib/grafana/snigate.json is missing";
  const json dashboard = json::parse(in);
  std::size_t exprs = 0;
  std::set<std::string> missing;
  const std::regex name(R"(\bsnigate_[a-z0-9_]+)");
  std::function<void(const json&)> walk = [&](const json& node) {
    if (node.is_object()) {
      for (const auto& [key, value] : node.items()) {
        if (key == "expr" && value.is_string()) {
          ++exprs;
          const std::string expr = value;
          for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name);
               it != std::sregex_iterator(); ++it)
            if (!have.count(it->str())) missing.insert(it->str());
        } else {
          walk(value);
        }
      }
    } else if (node.is_array()) {
      for (const auto& item : node) walk(item);
    }
  };
  walk(dashboard);
  EXPECT_GE(exprs, 8u) << "the dashboard has fewer queries than panels it should show";
  EXPECT_TRUE(missing.empty()) << "the dashboard queries metrics /metrics does not serve: "
                               << fmt::format("{}", fmt::join(missing, ", "));
}

// A real Prometheus (Debian's) scrapes snigated every second and answers a PromQL query with
// the number of connections the test made.
TEST_F(MetricsTest, PrometheusScrapesAndAnswersAQuery) {
  const std::string prometheus = which("prometheus");
  if (prometheus.empty()) {
    GTEST_SKIP() << "prometheus is not installed (Debian package prometheus; "
                    "tools/install-deps.sh installs it): no real scrape was tested";
  }
  constexpr int kConnections = 3;
  ASSERT_TRUE(drive(kConnections));
  const std::uint16_t web = free_port("127.0.0.1");
  write_file(dir_ / "prometheus.yml",
             fmt::format("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                         "scrape_configs:\n  - job_name: snigate\n    static_configs:\n"
                         "      - targets: ['127.0.0.1:{}']\n",
                         metrics_port_));
  Process server({prometheus, "--config.file=" + (dir_ / "prometheus.yml").string(),
                  "--storage.tsdb.path=" + (dir_ / "tsdb").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(web)},
                 dir_ / "prometheus.log");
  const std::string query = "http://127.0.0.1:" + std::to_string(web) +
                            "/api/v1/query?query=sum(snigate_connections_accepted_total)";
  std::string answer, last;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline && answer.empty()) {
    RunResult r = run({"curl", "-s", "-m", "2", query}, {}, 5s);
    last = r.output;
    if (r.exit_code == 0 && !r.output.empty() && r.output[0] == '{') {
      auto j = json::parse(r.output, nullptr, false);
      if (!j.is_discarded() && j.value("status", "") == "success" &&
          !j["data"]["result"].empty())
        answer = j["data"]["result"][0]["value"][1].get<std::string>();
    }
    if (answer.empty()) std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(answer, std::to_string(kConnections))
      << "last answer: " << last << "\nprometheus log:\n" << server.log();
  server.stop(SIGTERM, 10s);
}

}  // namespace
}  // namespace snigate::itest
