#include "dom0/metrics.h"

#include <httplib.h>

#include <sstream>

#include "dom0/config.h"
#include "dom0/harness.h"

namespace lull::dom0 {

MetricsServer::MetricsServer(std::function<std::string()> render) : render_(std::move(render)) {}
MetricsServer::~MetricsServer() { Stop(); }

Status MetricsServer::Start(const std::string& listen) {
  std::string host;
  int port = 0;
  if (Status s = ParseHostPort(listen, &host, &port); !s.ok())
    return Status::InvalidArgument("metrics address '" + listen + "': " + s.message());
  server_ = std::make_unique<httplib::Server>();
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (port == 0) port_ = server_->bind_to_any_port(host.c_str());
  else port_ = server_->bind_to_port(host.c_str(), port) ? port : -1;
  if (port_ < 0) return Status::IoError("metrics: cannot listen on " + listen);
  // bind_to_port already listens, so scrapes queue until the thread accepts them.
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::Ok();
}

void MetricsServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

namespace {
void Family(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}
std::string Esc(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r.push_back('\\');
    if (c == '\n') { r += "\\n"; continue; }
    r.push_back(c);
  }
  return r;
}
}  // namespace

std::string RenderMetrics(const Engine& e, const SimHost* host) {
  std::ostringstream o;
  const EngineStats& s = e.stats();
  auto guests = e.Guests();
  auto leases = e.Leases();
  Family(o, "lull_guest_cpu_demand", "gauge", "CPUs the guest wanted in the last sample.");
  for (auto& g : guests) o << "lull_guest_cpu_demand{domain=\"" << Esc(g.info.name) << "\",domid=\"" << g.info.domid << "\"} " << g.cpu_demand << "\n";
  Family(o, "lull_guest_cpu_predicted_p95", "gauge", "Predicted p95 peak CPU over the window, in CPUs.");
  for (auto& g : guests) o << "lull_guest_cpu_predicted_p95{domain=\"" << Esc(g.info.name) << "\"} " << g.cpu.p95 * g.info.vcpus << "\n";
  Family(o, "lull_guest_lent_cpus", "gauge", "CPUs currently lent from the guest.");
  for (auto& g : guests) o << "lull_guest_lent_cpus{domain=\"" << Esc(g.info.name) << "\"} " << g.lent_cpus << "\n";
  Family(o, "lull_guest_lent_mem_gib", "gauge", "Memory currently ballooned out of the guest for tasks.");
  for (auto& g : guests) o << "lull_guest_lent_mem_gib{domain=\"" << Esc(g.info.name) << "\"} " << g.lent_mem_gib << "\n";
  Family(o, "lull_guest_threshold", "gauge", "The guest's learned lending threshold (probability).");
  for (auto& g : guests) o << "lull_guest_threshold{domain=\"" << Esc(g.info.name) << "\"} " << g.threshold << "\n";
  Family(o, "lull_leases_active", "gauge", "Leases in force.");
  o << "lull_leases_active " << leases.size() << "\n";
  Family(o, "lull_leases_granted_total", "counter", "Leases granted.");
  o << "lull_leases_granted_total " << s.leases_granted << "\n";
  Family(o, "lull_revocations_total", "counter", "Leases ended: forced by demand, or planned returns.");
  o << "lull_revocations_total{kind=\"forced\"} " << s.forced_revocations << "\n";
  o << "lull_revocations_total{kind=\"planned\"} " << s.planned_returns << "\n";
  Family(o, "lull_handed_cpu_seconds_total", "counter", "CPU-seconds handed to management tasks.");
  o << "lull_handed_cpu_seconds_total " << s.handed_cpu_s << "\n";
  Family(o, "lull_handed_mem_gib_seconds_total", "counter", "GiB-seconds of memory handed to management tasks.");
  o << "lull_handed_mem_gib_seconds_total " << s.handed_mem_gib_s << "\n";
  Family(o, "lull_tasks_completed_total", "counter", "Management tasks completed.");
  o << "lull_tasks_completed_total " << s.tasks_completed << "\n";
  Family(o, "lull_control_periods_total", "counter", "Control periods run.");
  o << "lull_control_periods_total " << s.control_periods << "\n";
  Family(o, "lull_control_period_cost_seconds", "gauge", "Wall time of the last control period.");
  o << "lull_control_period_cost_seconds " << s.last_control_wall_us / 1e6 << "\n";
  Family(o, "lull_host_predicted_load", "gauge", "Predicted host demand / capacity (p95).");
  o << "lull_host_predicted_load " << s.host_load << "\n";
  if (host) {
    const SimStats& h = host->stats();
    Family(o, "lull_sim_time_seconds", "gauge", "Simulated time.");
    o << "lull_sim_time_seconds " << host->NowNs() / 1e9 << "\n";
    Family(o, "lull_unmet_cpu_seconds_total", "counter", "Guest CPU demand the host could not serve.");
    o << "lull_unmet_cpu_seconds_total " << h.unmet_cpu_s << "\n";
    Family(o, "lull_demand_cpu_seconds_total", "counter", "Guest CPU demand.");
    o << "lull_demand_cpu_seconds_total " << h.demand_cpu_s << "\n";
    Family(o, "lull_revocation_latency_seconds", "summary", "Demand returned -> donor restored.");
    o << "lull_revocation_latency_seconds{quantile=\"0.5\"} " << Percentile(h.revoke_latency_ms, 0.5) / 1e3 << "\n";
    o << "lull_revocation_latency_seconds{quantile=\"0.99\"} " << Percentile(h.revoke_latency_ms, 0.99) / 1e3 << "\n";
    double sum = 0;
    for (double x : h.revoke_latency_ms) sum += x;
    o << "lull_revocation_latency_seconds_sum " << sum / 1e3 << "\n";
    o << "lull_revocation_latency_seconds_count " << h.revoke_latency_ms.size() << "\n";
  }
  return o.str();
}

}  // namespace lull::dom0
