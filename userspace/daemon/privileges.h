#pragma once
// Dropping root once start-up is done ([daemon] user/group): snigated started by hand as root
// binds, loads and pins what needs root, then runs as that user with only the capabilities
// later work needs (reload binds new ports below 1024, loads the sockmap programs again).
// The only file that speaks libcap.
#include <sys/types.h>

#include <string>
#include <vector>

namespace snigate::daemon {

struct PrivilegeDrop {
  std::string user;   // empty: no drop, snigated keeps what it was started with
  std::string group;  // empty: the user's primary group
  bool perfmon = false;  // keep CAP_PERFMON: the sockmap relay's programs need it to load
  // Files snigated made and goes on writing (ban store, control socket, access log): given to
  // the user first. Their directories are the operator's (or systemd's StateDirectory=).
  std::vector<std::string> owned_files;
};

struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string group;  // the group's name
};
// The user and group a drop would switch to (`snigated --check` says it); throws
// std::runtime_error with advice when either does not exist.
Account resolve_account(const std::string& user, const std::string& group);

// Throws std::runtime_error with advice: no such user or group, not root and not already that
// user, a step the kernel refused. Must run while the process has one thread: capabilities
// and uids are per thread, and the threads started after it inherit the result. Logs one line
// saying what it dropped to.
void drop_privileges(const PrivilegeDrop& drop);

}  // namespace snigate::daemon
