#pragma once
// Start-up, reload and stop as the service manager sees them (systemd's Type=notify): the only
// place that speaks sd_notify, so no other file includes systemd's headers. Each call is a
// no-op when NOTIFY_SOCKET is unset (started by hand, or by a manager that does not listen).
namespace snigate::daemon::service {

// Every listener bound and the BPF maps loaded: clients are served from now on.
void ready();
// A reload began; ready() again when it ended (accepted or refused, the daemon serves).
void reloading();
// The drain began: no new connections.
void stopping();

}  // namespace snigate::daemon::service
