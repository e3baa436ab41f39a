#include "config/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace snigate::config {

std::optional<std::string> read_secret_file(const std::string& path, std::string* error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (error) *error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (st.st_mode & 0077) {
    if (error) *error = path + " is readable by other users; chmod 600 " + path;
    return std::nullopt;
  }
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    if (error) *error = "cannot read " + path;
    return std::nullopt;
  }
  std::string secret = text.str();
  auto first = secret.find_first_not_of(" \t\r\n");
  auto last = secret.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) {
    if (error) *error = path + " is empty";
    return std::nullopt;
  }
  return secret.substr(first, last - first + 1);
}

}  // namespace snigate::config
