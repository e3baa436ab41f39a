#include "config/route_regex.h"

namespace snigate::config {

RouteRegex compile_route_regex(const std::string& pattern, std::string* error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  RouteRegex re(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_CASELESS, &code, &offset, nullptr));
  if (!re && error) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code, message, sizeof message);
    *error = std::string(reinterpret_cast<const char*>(message)) + " at offset " +
             std::to_string(offset);
  }
  return re;
}

}  // namespace snigate::config
