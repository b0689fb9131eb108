// A real Prometheus server scrapes lulld's metrics endpoint; the series are read back
// through Prometheus's query API and compared with the engine's own counters.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "dom0/daemon.h"
#include "dom0/metrics.h"

namespace lull::dom0 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Queries Prometheus until the expression has a result (scrapes take a moment).
json QueryUntilPresent(httplib::Client& c, const std::string& expr, int attempts) {
  for (int i = 0; i < attempts; ++i) {
    auto res = c.Get(("/api/v1/query?query=" + httplib::detail::encode_query_param(expr)).c_str());
    if (res && res->status == 200) {
      json j = json::parse(res->body, nullptr, false);
      if (!j.is_discarded() && j["status"] == "success" && !j["data"]["result"].empty()) return j["data"]["result"];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return json::array();
}

TEST(Prometheus, ScrapesLulldAndAnswersQueries) {
  const char* prom = "/usr/bin/prometheus";
  if (access(prom, X_OK) != 0) GTEST_SKIP() << "Debian's prometheus is not installed (apt-get install prometheus)";

  LulldConfig cfg;
  cfg.guests = 4;
  cfg.pcpus = 4;
  cfg.days = 0.25;
  Daemon d(cfg);
  ASSERT_TRUE(d.Init().ok());
  for (int i = 0; i < 3 * 3600; ++i) d.StepOnce();  // then hold still: counters stay fixed
  ASSERT_GT(d.engine()->stats().leases_granted, 0u);
  MetricsServer m([&d] { return d.Metrics(); });
  ASSERT_TRUE(m.Start("127.0.0.1:0").ok());

  fs::path dir = fs::temp_directory_path() / ("lull_prom_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  {
    std::ofstream y(dir / "prometheus.yml");
    y << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: lulld\n    static_configs:\n      - targets: ['127.0.0.1:" << m.port() << "']\n";
  }
  // Prometheus on a port that was free a moment ago: another process may take it first,
  // and then Prometheus exits; start it again on another port. Ready is its /-/ready
  // answering, waited for while it lives (bounded at 2 minutes, only to end a hang).
  auto start = [&](int web) -> pid_t {
    pid_t pid = fork();
    if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::string cf = "--config.file=" + (dir / "prometheus.yml").string();
      std::string st = "--storage.tsdb.path=" + (dir / "data").string();
      std::string la = "--web.listen-address=127.0.0.1:" + std::to_string(web);
      execl(prom, prom, cf.c_str(), st.c_str(), la.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  };
  pid_t pid = -1;
  int web = 0;
  bool ready = false;
  for (int attempt = 0; attempt < 3 && !ready; ++attempt) {
    web = FreePort();
    pid = start(web);
    ASSERT_GE(pid, 0);
    httplib::Client probe("127.0.0.1", web);
    probe.set_connection_timeout(2);
    for (int i = 0; i < 1200 && !ready; ++i) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      auto res = probe.Get("/-/ready");
      ready = res && res->status == 200;
      if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (!ready && pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  ASSERT_TRUE(ready) << "Prometheus did not start (three ports tried)";
  httplib::Client c("127.0.0.1", web);
  c.set_connection_timeout(2);
  json granted = QueryUntilPresent(c, "lull_leases_granted_total{job=\"lulld\"}", 240);
  json lent = QueryUntilPresent(c, "count(lull_guest_lent_cpus)", 20);
  json up = QueryUntilPresent(c, "up{job=\"lulld\"}", 20);
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  m.Stop();
  fs::remove_all(dir);

  ASSERT_EQ(granted.size(), 1u) << "Prometheus never stored lull_leases_granted_total";
  EXPECT_EQ(std::stod(granted[0]["value"][1].get<std::string>()),
            static_cast<double>(d.engine()->stats().leases_granted));
  ASSERT_EQ(lent.size(), 1u);
  EXPECT_EQ(lent[0]["value"][1].get<std::string>(), "4");  // one series per guest
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0]["value"][1].get<std::string>(), "1");
}

}  // namespace
}  // namespace lull::dom0
