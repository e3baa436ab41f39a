#include "daemon/service_notify.h"

#include <time.h>

#include <string>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

namespace snigate::daemon::service {

namespace {

void notify(const char* state) {
  // A manager that asked for notifications and cannot be told leaves the unit "activating"
  // until its timeout: worth a line in the log, never a reason to stop serving.
  if (int r = sd_notify(0, state); r < 0)
    spdlog::warn("service manager not notified of {}: error {}", state, -r);
}

}  // namespace

void ready() { notify("READY=1"); }

void reloading() {
  // systemd 253 and later want the monotonic time of the reload with RELOADING=1 (for
  // Type=notify-reload); older ones ignore it.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const unsigned long long usec =
      static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
      static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
  const std::string state = "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
  notify(state.c_str());
}

void stopping() { notify("STOPPING=1"); }

}  // namespace snigate::daemon::service
