#include "daemon/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace snigate::daemon {

namespace {

std::runtime_error failure(const std::string& what, int err) {
  return std::runtime_error("[daemon] user: " + what + ": " + std::strerror(err));
}

struct CapFree {
  void operator()(void* p) const { cap_free(p); }
};
using Caps = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

std::string text(cap_t caps) {
  std::unique_ptr<char, CapFree> t(cap_to_text(caps, nullptr));
  return t ? t.get() : "?";
}

std::size_t threads() {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

// What a later reload or ban may need: ports below 1024, attaching XDP/TC and loading BPF
// (CAP_NET_ADMIN, CAP_BPF), and the sockmap relay's programs (CAP_PERFMON). Only what the
// process held at start: root in a container may lack some, and asking for more fails.
std::vector<cap_value_t> wanted(const PrivilegeDrop& drop, cap_t held) {
  std::vector<cap_value_t> want{CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_BPF};
  if (drop.perfmon) want.push_back(CAP_PERFMON);
  std::erase_if(want, [held](cap_value_t c) {
    cap_flag_value_t v = CAP_CLEAR;
    return cap_get_flag(held, c, CAP_PERMITTED, &v) != 0 || v != CAP_SET;
  });
  return want;
}

// Never through a symlink or onto a file with other names: the directories may be the user's
// already (/var/log/snigate), and a link planted there must not hand root's files to it.
void give(const std::vector<std::string>& files, uid_t uid, gid_t gid) {
  for (const auto& f : files) {
    struct stat st {};
    if (::lstat(f.c_str(), &st) != 0) continue;  // not made (yet): nothing to give
    const bool plain = (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode)) && st.st_nlink == 1;
    if (!plain || ::lchown(f.c_str(), uid, gid) != 0)
      spdlog::warn("privileges: {} not given to uid {} ({}); the daemon may fail to write it",
                   f, uid, plain ? std::strerror(errno) : "a link, or not a plain file");
  }
}

}  // namespace

Account resolve_account(const std::string& user, const std::string& group_name) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (int e = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found); e != 0 || !found)
    throw std::runtime_error("[daemon] user = \"" + user + "\": no such user" +
                             (e ? std::string(" (") + std::strerror(e) + ")" : "") +
                             "; create it (adduser --system --group " + user +
                             ") or name another");
  Account a{pw.pw_uid, pw.pw_gid, {}};
  group gr{};
  group* g = nullptr;
  std::vector<char> gbuf(16384);
  const int e = group_name.empty()
                    ? ::getgrgid_r(a.gid, &gr, gbuf.data(), gbuf.size(), &g)
                    : ::getgrnam_r(group_name.c_str(), &gr, gbuf.data(), gbuf.size(), &g);
  if (!group_name.empty() && (e != 0 || !g))
    throw std::runtime_error("[daemon] group = \"" + group_name + "\": no such group; create "
                             "it (addgroup --system " + group_name + ") or name another");
  if (g) {
    a.gid = gr.gr_gid;
    a.group = gr.gr_name;
  } else {
    a.group = std::to_string(a.gid);  // a primary gid without a name in /etc/group
  }
  return a;
}

void drop_privileges(const PrivilegeDrop& drop) {
  if (drop.user.empty()) return;
  const Account account = resolve_account(drop.user, drop.group);
  const uid_t uid = account.uid;
  const gid_t gid = account.gid;
  if (::geteuid() != 0) {
    // Under systemd's User= with AmbientCapabilities=, the manager did the drop already.
    if (::getuid() == uid) {
      Caps now(cap_get_proc());
      spdlog::info("privileges: already user {} (uid {}), capabilities {}", drop.user, uid,
                   text(now.get()));
      return;
    }
    throw std::runtime_error("[daemon] user = \"" + drop.user + "\": cannot switch to it, "
                             "snigated runs as uid " + std::to_string(::getuid()) +
                             ", not root; start it as root or as " + drop.user +
                             ", or remove [daemon] user");
  }
  if (std::size_t n = threads(); n != 1)
    throw std::logic_error("privilege drop with " + std::to_string(n) + " threads running; "
                           "it must come before any thread starts");

  Caps held(cap_get_proc());
  const std::vector<cap_value_t> keep = wanted(drop, held.get());
  give(drop.owned_files, uid, gid);

  // The bounding set first, while CAP_SETPCAP is effective (cap_setgroups clears the effective
  // set): nothing outside `keep` comes back, not even through a program with file capabilities.
  bool bounded = true;
  for (cap_value_t c = 0; c < cap_max_bits(); ++c) {
    if (std::find(keep.begin(), keep.end(), c) != keep.end()) continue;
    if (cap_drop_bound(c) != 0) bounded = false;  // no CAP_SETPCAP (some containers)
  }
  // Supplementary groups as a login would have them (adm, say, to read logs a jail follows).
  int ngroups = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(ngroups));
  if (::getgrouplist(drop.user.c_str(), gid, groups.data(), &ngroups) < 0) {
    groups.resize(static_cast<std::size_t>(ngroups));
    ::getgrouplist(drop.user.c_str(), gid, groups.data(), &ngroups);
  }
  groups.resize(static_cast<std::size_t>(ngroups));
  if (cap_setgroups(gid, groups.size(), groups.data()) != 0) throw failure("setgroups", errno);

  // Keeps the permitted set across the uid change (libcap sets PR_SET_KEEPCAPS around it).
  if (cap_setuid(uid) != 0) throw failure("setuid", errno);
  Caps caps(cap_init());
  if (!keep.empty() &&
      (cap_set_flag(caps.get(), CAP_PERMITTED, static_cast<int>(keep.size()), keep.data(), CAP_SET) != 0 ||
       cap_set_flag(caps.get(), CAP_EFFECTIVE, static_cast<int>(keep.size()), keep.data(), CAP_SET) != 0))
    throw failure("cap_set_flag", errno);
  if (cap_set_proc(caps.get()) != 0) throw failure("capset", errno);
  cap_reset_ambient();  // empty already after setuid; an old kernel without ambient says EINVAL

  Caps now(cap_get_proc());
  spdlog::info("privileges: dropped to user {} (uid {}), group {} (gid {}), capabilities {}{}",
               drop.user, uid, account.group, gid, text(now.get()),
               bounded ? " (bounding set the same)" : " (bounding set left as is: no CAP_SETPCAP)");
}

}  // namespace snigate::daemon
