#include "watch/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace snigate::watch {

bool create_private(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // A file left by an older version keeps its mode through O_CREAT: set it.
  const bool ok = ::fchmod(fd, 0600) == 0;
  ::close(fd);
  return ok;
}

}  // namespace snigate::watch
