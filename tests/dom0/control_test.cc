// The control socket: permissions, peer credentials, and the requests lullctl sends.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <vector>

#include "dom0/control.h"
#include "dom0/daemon.h"

namespace lull::dom0 {
namespace {

using nlohmann::json;

std::string TempSock(const char* tag) {
  return (std::filesystem::temp_directory_path() / ("lull_" + std::string(tag) + "_" + std::to_string(getpid()) + ".sock")).string();
}

// Runs a shell command, returns (exit status, output).
std::pair<int, std::string> Sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::array<char, 512> buf;
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  int st = p ? pclose(p) : -1;
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

LulldConfig SmallConfig(const std::string& sock) {
  LulldConfig c;
  c.guests = 4;
  c.pcpus = 4;
  c.days = 0.1;
  c.socket = sock;
  c.metrics_listen = "";
  return c;
}

TEST(ControlSocket, IsCreatedRootOnly) {
  std::string path = TempSock("perm");
  ControlServer s(path, [](const json&) { return json{{"ok", true}}; });
  ASSERT_TRUE(s.Start().ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  s.Stop();
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ControlSocket, AnswersJsonLinesAndRejectsGarbage) {
  std::string path = TempSock("json");
  ControlServer s(path, [](const json& r) { return json{{"ok", true}, {"echo", r["cmd"]}}; });
  ASSERT_TRUE(s.Start().ok());
  json reply;
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "list"}}, &reply).ok());
  EXPECT_EQ(reply["echo"], "list");
  ASSERT_TRUE(ControlRequest(path, {{"nocmd", 1}}, &reply).ok());
  EXPECT_FALSE(reply["ok"].get<bool>());
  EXPECT_NE(reply["error"].get<std::string>().find("\"cmd\""), std::string::npos);
  Status st = ControlRequest(path + ".missing", {{"cmd", "list"}}, &reply);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(".missing"), std::string::npos);
}

TEST(ControlSocket, AHandlerThatThrowsCostsOnlyThatRequest) {
  std::string path = TempSock("throw");
  ControlServer s(path, [](const json& r) {
    if (r["cmd"] == "boom") return json{{"ok", true}, {"x", r.at("missing")}};  // throws out_of_range
    return json{{"ok", true}};
  });
  ASSERT_TRUE(s.Start().ok());
  json reply;
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "boom"}}, &reply).ok());
  EXPECT_FALSE(reply["ok"].get<bool>());
  EXPECT_NE(reply["error"].get<std::string>().find("request 'boom' failed"), std::string::npos) << reply.dump();
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "list"}}, &reply).ok());  // the server lives on
  EXPECT_TRUE(reply["ok"].get<bool>());
}

// Start() must not take the path from a live server (its clients would be cut off and it
// would unlink our socket on its way out) nor remove a file that is not a socket; a
// socket nobody accepts on is a dead lulld's and is replaced.
TEST(ControlSocket, StartLeavesALiveServerAndOtherFilesAlone) {
  std::string path = TempSock("live");
  auto echo = [](const json&) { return json{{"ok", true}}; };
  ControlServer first(path, echo), second(path, echo);
  ASSERT_TRUE(first.Start().ok());
  Status st = second.Start();
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("another lulld is serving " + path), std::string::npos) << st.ToString();
  json reply;
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "list"}}, &reply).ok()) << "the live server lost its socket";
  first.Stop();

  { std::ofstream(path) << "keep me\n"; }
  st = second.Start();
  EXPECT_EQ(st.code(), Status::Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("is not a socket"), std::string::npos) << st.ToString();
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "keep me");
  std::filesystem::remove(path);

  // A listener that accepts nobody, its backlog full: alive, and the probe must not wait
  // for room (bounded at 60 s only to fail instead of hanging).
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  {
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(lfd, 0);
    ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(lfd, 0), 0);
    std::vector<int> clients;
    for (int i = 0; i < 64; ++i) {  // until the backlog refuses more
      int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) { close(c); break; }
      clients.push_back(c);
    }
    auto done = std::make_shared<std::promise<Status>>();
    auto result = done->get_future();
    std::thread([done, &second] { done->set_value(second.Start()); }).detach();
    ASSERT_EQ(result.wait_for(std::chrono::seconds(60)), std::future_status::ready)
        << "Start() waited on a full backlog";
    st = result.get();
    EXPECT_EQ(st.code(), Status::Code::kAlreadyExists) << st.ToString();
    for (int c : clients) close(c);
    close(lfd);
    std::filesystem::remove(path);
  }

  // A socket bound and closed without unlinking: what a killed lulld leaves.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  close(fd);
  ASSERT_TRUE(std::filesystem::exists(path));
  st = second.Start();
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "list"}}, &reply).ok());
  EXPECT_TRUE(reply["ok"].get<bool>());
}

TEST(ControlSocket, PeerCredentialsAreChecked) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv (util-linux) not installed";
  std::string path = TempSock("cred");
  std::atomic<int> calls{0};  // bumped on the server's thread
  ControlServer s(path, [&](const json&) { ++calls; return json{{"ok", true}, {"guests", json::array()}}; });
  ASSERT_TRUE(s.Start().ok());
  const std::string as_nobody = "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups " LULLCTL_PATH " -s " + path + " -j list";
  // The file mode keeps uid 65534 out...
  auto [rc1, out1] = Sh(as_nobody);
  EXPECT_NE(rc1, 0);
  EXPECT_NE(out1.find("permission denied"), std::string::npos) << out1;
  // ...and with the file opened up, SO_PEERCRED still does.
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  auto [rc2, out2] = Sh(as_nobody);
  EXPECT_NE(rc2, 0);
  EXPECT_NE(out2.find("peer uid 65534 is not allowed"), std::string::npos) << out2;
  EXPECT_EQ(s.rejected(), 1u);
  EXPECT_EQ(calls, 0);
  // Root is served.
  auto [rc3, out3] = Sh(std::string(LULLCTL_PATH) + " -s " + path + " -j list");
  EXPECT_EQ(rc3, 0) << out3;
  EXPECT_EQ(calls, 1);
  s.Stop();
  // A uid named in daemon.socket_uid is let in.
  ControlServer s2(path, [&](const json&) { ++calls; return json{{"ok", true}, {"guests", json::array()}}; }, 65534);
  ASSERT_TRUE(s2.Start().ok());
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  auto [rc4, out4] = Sh(as_nobody);
  EXPECT_EQ(rc4, 0) << out4;
  EXPECT_EQ(calls, 2);
}

TEST(DaemonRequests, ListPredictTasksLendRevokeConfig) {
  std::string path = TempSock("daemon");
  Daemon d(SmallConfig(path));
  ASSERT_TRUE(d.Init().ok());
  for (int i = 0; i < 600; ++i) d.StepOnce();
  ControlServer s(path, [&](const json& r) { return d.Handle(r); });
  ASSERT_TRUE(s.Start().ok());
  json r;
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "list"}}, &r).ok());
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_EQ(r["guests"].size(), 4u);
  EXPECT_EQ(r["guests"][0]["name"], "guest1");
  EXPECT_NEAR(r["time_s"].get<double>(), 600, 1e-9);

  ASSERT_TRUE(ControlRequest(path, {{"cmd", "predict"}, {"domain", "guest2"}}, &r).ok());
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_GE(r["guest"]["cpu_pred"]["p95"].get<double>(), r["guest"]["cpu_pred"]["p50"].get<double>());
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "predict"}, {"domain", "nosuch"}}, &r).ok());
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("nosuch"), std::string::npos);

  ASSERT_TRUE(ControlRequest(path, {{"cmd", "task-add"}, {"kind", "defrag"}, {"cpu_s", 10}}, &r).ok());
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_NE(r["error"].get<std::string>().find("defrag"), std::string::npos);
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "task-add"}, {"kind", "backup"}, {"cpu_s", 100}, {"mem_gib", 0.5}}, &r).ok());
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  uint64_t task = r["id"].get<uint64_t>();

  ASSERT_TRUE(ControlRequest(path, {{"cmd", "revoke"}, {"domain", "guest3"}}, &r).ok());  // start clean
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "lend"}, {"domain", "guest3"}, {"task", task}, {"cpus", 0.5}}, &r).ok());
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  uint64_t lease = r["lease"].get<uint64_t>();
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "leases"}}, &r).ok());
  bool found = false;
  for (auto& l : r["leases"]) found |= l["id"].get<uint64_t>() == lease && l["manual"].get<bool>();
  EXPECT_TRUE(found) << r.dump();
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "revoke"}, {"lease", lease}}, &r).ok());
  EXPECT_TRUE(r["ok"].get<bool>()) << r.dump();
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "tasks"}}, &r).ok());
  EXPECT_GT(r["tasks"].size(), 0u);

  ASSERT_TRUE(ControlRequest(path, {{"cmd", "config"}}, &r).ok());
  EXPECT_NE(r["toml"].get<std::string>().find("pcpus = 4"), std::string::npos);
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "frobnicate"}}, &r).ok());
  EXPECT_NE(r["error"].get<std::string>().find("unknown command 'frobnicate'"), std::string::npos);

  size_t n = 0;
  ASSERT_TRUE(d.Shutdown(&n).ok());
  for (const auto& g : d.engine()->Guests()) {
    EXPECT_DOUBLE_EQ(d.host()->Entitlement(g.info.domid), g.info.vcpus);
    EXPECT_DOUBLE_EQ(d.host()->BalloonTarget(g.info.domid), g.info.mem_max_gib);
  }
  EXPECT_EQ(d.host()->ActiveLeases(), 0u);
}

TEST(DaemonRequests, ConcurrentClientsWhileTheDaemonRuns) {
  std::string path = TempSock("conc");
  Daemon d(SmallConfig(path));
  ASSERT_TRUE(d.Init().ok());
  ControlServer s(path, [&](const json& r) { return d.Handle(r); });
  ASSERT_TRUE(s.Start().ok());
  std::atomic<bool> stop{false};
  std::thread runner([&] { (void)d.Run(stop, true); });
  int ok = 0;
  for (int i = 0; i < 50; ++i) {
    json r;
    if (ControlRequest(path, {{"cmd", i % 2 ? "top" : "leases"}}, &r).ok() && r["ok"].get<bool>()) ++ok;
  }
  runner.join();
  EXPECT_EQ(ok, 50);
  ASSERT_TRUE(d.Shutdown().ok());
  EXPECT_EQ(d.host()->ActiveLeases(), 0u);
}

// Each field is refused by name, whatever a client sends: JSON null (what lullctl's
// --deadline inf became), strings, numbers out of range or not whole, domain ids that
// wrapped. Nothing is queued or lent by a refused request, and the daemon answers on.
TEST(DaemonRequests, BadFieldsAreRefusedByNameAndNothingChanges) {
  std::string path = TempSock("fields");
  Daemon d(SmallConfig(path));
  ASSERT_TRUE(d.Init().ok());
  for (int i = 0; i < 60; ++i) d.StepOnce();
  ControlServer s(path, [&](const json& r) { return d.Handle(r); });
  ASSERT_TRUE(s.Start().ok());
  json r;
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "revoke"}, {"domain", "guest1"}}, &r).ok());
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "task-add"}, {"kind", "backup"}, {"cpu_s", 100}}, &r).ok());
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  const uint64_t task = r["id"].get<uint64_t>();
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "tasks"}}, &r).ok());
  const size_t tasks = r["tasks"].size();  // the built-in workload's and ours
  auto add = [](const char* key, json v) {
    json q = {{"cmd", "task-add"}, {"kind", "backup"}, {"cpu_s", 100}};
    q[key] = std::move(v);
    return q;
  };
  auto lend = [&](const char* key, json v) {
    json q = {{"cmd", "lend"}, {"domain", "guest1"}, {"task", task}, {"cpus", 0.25}};
    q[key] = std::move(v);
    return q;
  };
  const std::pair<json, std::string> cases[] = {
      {add("deadline_s", nullptr), "\"deadline_s\" must be a number"},
      {add("deadline_s", 1e300), "\"deadline_s\" must be a number in [0, 1e+09], got 1e+300"},
      {add("mem_gib", nullptr), "\"mem_gib\""},
      {add("mem_gib", -1), "\"mem_gib\""},
      {add("cpu_s", "100"), "\"cpu_s\" must be a number in [0, 1e+09], got \"100\""},
      {add("max_cpus", 1e10), "\"max_cpus\" must be a whole number"},
      {add("max_cpus", 2.5), "\"max_cpus\" must be a whole number"},
      {add("max_cpus", -1), "\"max_cpus\""},
      {add("target", 7), "\"target\" must be a string"},
      {add("kind", json::array()), "\"kind\" must be a string"},
      {lend("cpus", nullptr), "\"cpus\" must be a number"},
      {lend("cpus", 1e300), "\"cpus\""},
      {lend("mem_gib", "1"), "\"mem_gib\""},
      {lend("task", -1), "\"task\" must be a whole number"},
      {lend("domain", "4294967297"), "\"4294967297\" is not a domain id (0..32751)"},  // wrapped to 1
      {lend("domain", 65536 + 1), "65537 is not a domain id"},  // truncated to 1
      {lend("domain", true), "\"domain\" must be a domain id or name, got true"},
      {{{"cmd", "revoke"}, {"lease", "7"}}, "\"lease\" must be a whole number"},
      {{{"cmd", 5}}, "expected a JSON object with a string \"cmd\""},
  };
  for (const auto& [req, want] : cases) {
    ASSERT_TRUE(ControlRequest(path, req, &r).ok()) << req.dump();
    EXPECT_FALSE(r.value("ok", true)) << req.dump() << " -> " << r.dump();
    EXPECT_NE(r.value("error", "").find(want), std::string::npos) << req.dump() << " -> " << r.dump();
  }
  EXPECT_FALSE(d.Handle(json::array()).value("ok", true));  // not an object: refused, not thrown
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "tasks"}}, &r).ok());
  ASSERT_EQ(r["tasks"].size(), tasks) << r.dump();
  ASSERT_TRUE(ControlRequest(path, {{"cmd", "leases"}}, &r).ok());
  for (const auto& l : r["leases"]) EXPECT_FALSE(l["manual"].get<bool>()) << r.dump();
  // The good request still works after all that.
  ASSERT_TRUE(ControlRequest(path, lend("cpus", 0.25), &r).ok());
  EXPECT_TRUE(r.value("ok", false)) << r.dump();
  ASSERT_TRUE(d.Shutdown().ok());
}

}  // namespace
}  // namespace lull::dom0

namespace lull::dom0 {
namespace {

// The real binary: SIGTERM makes lulld return every lease before it exits. The count it
// restores must be the count it held, so the leases are frozen first: lulld's simulated
// day ends (no more steps, nothing lent or returned by the engine) and a manual lease is
// added. Polling live leases instead raced the engine: at --speed 20000 a lease seen by
// one request can be returned before the SIGTERM lands.
TEST(LulldProcess, SigtermRestoresEveryLeaseAndExitsCleanly) {
  std::string sock = TempSock("sigterm");
  std::string log = sock + ".log";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    execl(LULLD_PATH, LULLD_PATH, "--guests", "8", "--cpus", "8", "--days", "1", "--socket", sock.c_str(),
          "--metrics", "", "--speed", "20000", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto slurp = [&] {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  // Wait for the event, not a time: the log line that says the workload is over (bounded
  // at 10 minutes, only to end a hang; the day takes ~4 s of wall time unloaded).
  bool ended = false;
  for (int i = 0; i < 6000 && !ended; ++i) {
    ended = slurp().find("workload ended") != std::string::npos;
    if (!ended) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (!ended) kill(pid, SIGKILL);
  ASSERT_TRUE(ended) << "lulld's simulated day did not end: " << slurp();
  json r;
  ASSERT_TRUE(ControlRequest(sock, {{"cmd", "list"}}, &r).ok());
  EXPECT_GT(r.value("handed_cpu_s", 0.0), 0.0) << "lulld never lent anything: " << r.dump();
  ASSERT_TRUE(ControlRequest(sock, {{"cmd", "task-add"}, {"kind", "backup"}, {"cpu_s", 100}}, &r).ok());
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  const uint64_t task = r["id"].get<uint64_t>();
  bool lent = false;
  for (int g = 1; g <= 8 && !lent; ++g) {
    ASSERT_TRUE(ControlRequest(sock, {{"cmd", "lend"}, {"domain", "guest" + std::to_string(g)}, {"task", task},
                                      {"cpus", 0.25}},
                               &r)
                    .ok());
    lent = r.value("ok", false);
  }
  ASSERT_TRUE(lent) << "no guest could lend 0.25 CPUs: " << r.dump();
  ASSERT_TRUE(ControlRequest(sock, {{"cmd", "leases"}}, &r).ok());
  const size_t leases = r["leases"].size();
  ASSERT_GT(leases, 0u);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string text = slurp();
  EXPECT_NE(text.find("stopping: restored " + std::to_string(leases) + " leases"), std::string::npos)
      << "held " << leases << " leases:\n" << text;
  EXPECT_FALSE(std::filesystem::exists(sock));  // the socket is removed on the way out
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace lull::dom0
