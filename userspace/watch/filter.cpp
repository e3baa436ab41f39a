#include "watch/filter.h"

#include <deque>
#include <map>

#include "watch/date_detector.h"
#include "watch/pcre.h"

namespace snigate::watch {

namespace {

// fail2ban 1.0 server/failregex.py and ipdns.py, verbatim.
const std::string kIp4 =
    R"((?:25[0-5]|2[0-4]\d|1\d{2}|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d{2}|[1-9]?\d)){3})";
const std::string kIp6 = R"((?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):))";
const std::string kRIp4 = R"((?:::f{4,6}:)?(?P<ip4>)" + kIp4 + ")";
const std::string kRIp6 = "(?P<ip6>" + kIp6 + ")";
const std::string kRDns = R"((?P<dns>[\w\-.^_]*\w))";
const std::string kRAddr = R"(\[?(?:)" + kRIp4 + "|" + kRIp6 + R"()\]?)";
const std::string kRHost = "(?:" + kRAddr + "|" + kRDns + ")";
const std::string kRCidr = R"((?P<cidr>\d+))";
const std::string kRSubnet = R"(\[?(?:)" + kRIp4 + "|" + kRIp6 + ")(?:/" + kRCidr + R"()?\]?)";

const std::map<std::string, std::string>& static_tags() {
  static const std::map<std::string, std::string> tags = {
      {"IP4", kRIp4},       {"F-IP4/", kRIp4},       {"IP6", kRIp6},
      {"F-IP6/", kRIp6},    {"ADDR", kRAddr},        {"F-ADDR/", kRAddr},
      {"CIDR", kRCidr},     {"F-CIDR/", kRCidr},     {"SUBNET", kRSubnet},
      {"F-SUBNET/", kRSubnet}, {"DNS", kRDns},       {"F-DNS/", kRDns},
      {"F-ID/", R"((?P<fid>\S+))"}, {"F-PORT/", R"((?P<fport>\w+))"},
  };
  return tags;
}

bool is_tag_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

std::string group_name(std::string tag) {
  for (auto& c : tag) c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (tag == "id") return "fid";
  if (tag == "port") return "fport";
  return tag;
}

enum Group { kGIp4, kGIp6, kGDns, kGFid, kGMlfid, kGNofail, kGForget, kGGained, kGUser,
             kGContent, kGroups };
const char* const kGroupNames[kGroups] = {"ip4", "ip6", "dns", "fid", "mlfid", "nofail",
                                          "mlfforget", "mlfgained", "user", "content"};

struct Compiled {
  Pcre regex;
  std::vector<int> groups[kGroups];
  Compiled(const std::string& source, bool multiline)
      : regex(expand_fail2ban_tags(source), false, multiline) {
    for (int g = 0; g < kGroups; ++g) groups[g] = regex.groups(kGroupNames[g]);
    // <F-ALT_USER...>: fail2ban takes the first alt_user* group as `user` when F-USER is unset.
    for (const auto& name : regex.group_names())
      if (name.rfind("alt_user", 0) == 0)
        for (int n : regex.groups(name)) alt_user.push_back(n);
  }
  std::vector<int> alt_user;
};

// Groups of one failure as fail2ban's dict holds them (only the ones snigate uses).
struct Fail {
  std::optional<std::string> v[kGroups];
  bool pending = false;
  std::vector<std::string> users;
};

}  // namespace

std::string expand_fail2ban_tags(const std::string& regex, bool use_dns) {
  std::string out;
  std::map<std::string, bool> open;
  int skiplines = 0;
  for (std::size_t i = 0; i < regex.size();) {
    // FTAG_CRE: </?[\w\-]+/?>
    if (regex[i] == '<') {
      std::size_t j = i + 1;
      if (j < regex.size() && regex[j] == '/') ++j;
      std::size_t name_begin = j;
      while (j < regex.size() && is_tag_char(regex[j])) ++j;
      std::size_t name_end = j;
      if (j < regex.size() && regex[j] == '/') ++j;
      if (name_end > name_begin && j < regex.size() && regex[j] == '>') {
        std::string tag = regex.substr(i, j - i + 1);
        std::string tn = tag.substr(1, tag.size() - 2);
        i = j + 1;
        if (tn == "HOST") {
          out += use_dns ? kRHost : kRAddr;
          continue;
        }
        if (tn == "SKIPLINES") {
          out += R"(\n(?P<skiplines)" + std::to_string(skiplines++) + R"(>(?:(?:.*\n)*?)))";
          continue;
        }
        if (auto it = static_tags().find(tn); it != static_tags().end()) {
          out += it->second;
          continue;
        }
        // FCUSTNAME_CRE: ^(/?)F-([A-Z0-9_\-]+)$
        bool closing = tn[0] == '/';
        std::string body = closing ? tn.substr(1) : tn;
        bool custom = body.size() > 2 && body.compare(0, 2, "F-") == 0 &&
                      body.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", 2) ==
                          std::string::npos;
        if (!custom) {
          out += tag;
          continue;
        }
        std::string name = body.substr(2);
        if (closing) {
          out += open[name] ? ")" : tag;
        } else {
          open[name] = true;
          out += "(?P<" + group_name(name) + ">";
        }
        continue;
      }
    }
    out += regex[i++];
  }
  return out;
}

struct Filter::Impl {
  FilterDefinition def;
  DateDetector dates;
  std::optional<Compiled> prefregex;  // compiled multi-line when maxlines > 1
  std::vector<Compiled> failregex;
  std::vector<Compiled> ignoreregex;
  // F-MLFID cache: fail2ban keeps 100 connections for 5 minutes; we keep the last 1000.
  std::map<std::string, Fail> mlfid;
  std::deque<std::string> mlfid_order;
  Match match;
  bool gave_up = false;  // some search of this line hit PCRE2's limit
  std::string buf;
  // maxlines > 1: the last lines (date cut out), searched together; a match consumes them.
  std::deque<std::string> lines;

  explicit Impl(const FilterDefinition& d) : def(d), dates(d.datepattern) {
    auto compile = [&](const std::string& source, const char* what) {
      try {
        return Compiled(source, def.maxlines > 1);
      } catch (const RegexError& e) {
        throw FilterError(def.source + ": " + what + " does not compile: " + e.what());
      }
    };
    if (!def.prefregex.empty()) prefregex.emplace(compile(def.prefregex, "prefregex"));
    for (const auto& r : def.failregex) failregex.push_back(compile(r, "failregex"));
    for (const auto& r : def.ignoreregex) ignoreregex.push_back(compile(r, "ignoreregex"));
    // fail2ban's FailRegex: FAILURE_ID_PRESENTS in the regex or in prefregex.
    auto has_id = [](const Compiled& c) {
      for (int g : {kGIp4, kGIp6, kGDns, kGFid, kGMlfid})
        if (!c.groups[g].empty()) return true;
      return false;
    };
    if (!prefregex || !has_id(*prefregex))
      for (std::size_t i = 0; i < failregex.size(); ++i)
        if (!has_id(failregex[i]))
          throw FilterError(def.source + ": failregex '" + def.failregex[i] +
                            "' has no <HOST> (nor <ADDR>, <IP4>, <IP6>, <F-ID/>, <F-MLFID>), so it "
                            "could never ban anyone; add <HOST> where the client's address is");
  }

  bool search(const Compiled& r, std::string_view text) {
    if (r.regex.search(text, match)) return true;
    gave_up = gave_up || match.limit_hit();
    return false;
  }

  bool ignored(std::string_view text) {
    for (const auto& r : ignoreregex)
      if (search(r, text)) return true;
    return false;
  }

  void remember(const std::string& id, Fail f) {
    if (!mlfid.count(id)) {
      mlfid_order.push_back(id);
      if (mlfid_order.size() > 1000) {
        mlfid.erase(mlfid_order.front());
        mlfid_order.pop_front();
      }
    }
    mlfid[id] = std::move(f);
  }

  // Filter._mergeFailure, reduced to what decides "failure or not" and the host.
  Fail merge(const std::string& id, Fail fail) {
    int flags = 0;
    if (fail.v[kGGained]) {
      flags |= 8 | 1;
      if (!fail.v[kGNofail]) fail.v[kGNofail] = fail.v[kGGained];
    } else if (fail.v[kGNofail]) {
      flags |= 1;
    }
    if (fail.v[kGForget]) flags |= 2;
    fail.v[kGForget].reset();
    std::size_t users = 0;
    auto cached = mlfid.find(id);
    if (cached != mlfid.end()) {
      Fail merged = cached->second;
      if (fail.v[kGUser]) {
        bool known = false;
        for (const auto& u : merged.users) known = known || u == *fail.v[kGUser];
        if (!known) merged.users.push_back(*fail.v[kGUser]);
      }
      users = merged.users.size();
      merged.v[kGNofail].reset();
      merged.v[kGGained].reset();
      if (flags & 8) merged.pending = false;
      for (int g = 0; g < kGroups; ++g)
        if (fail.v[g]) merged.v[g] = fail.v[g];
      fail = std::move(merged);
      if (flags & 2) {
        mlfid.erase(cached);
      } else {
        cached->second = fail;
      }
    } else if (!(flags & 2)) {
      if (fail.v[kGUser]) fail.users.push_back(*fail.v[kGUser]);
      users = fail.users.size();
      remember(id, fail);
    }
    if (fail.pending || users > 1) {
      fail.pending = false;
      fail.v[kGNofail].reset();
      fail.v[kGGained].reset();
      if (auto it = mlfid.find(id); it != mlfid.end()) it->second = fail;
    }
    return fail;
  }

  std::string valid;  // the line with invalid UTF-8 replaced, when it had any

  LineResult process(std::string_view raw, std::chrono::system_clock::time_point now) {
    LineResult result;
    std::string_view line = to_valid_utf8(raw, valid);
    buf.clear();
    if (auto date = dates.find(line, now)) {
      buf.append(line.substr(0, date->begin));
      buf.append(line.substr(date->end));
      result.time = date->time;
    } else {
      buf.append(line);
    }
    if (def.maxlines > 1) {
      lines.push_back(buf);
      if (lines.size() > static_cast<std::size_t>(def.maxlines)) lines.pop_front();
      buf.clear();
      for (const auto& l : lines) buf += (buf.empty() ? "" : "\n") + l;
    }
    buf += '\n';

    if (!ignoreregex.empty() && ignoreregex.size() + 2 < failregex.size() && ignored(buf)) {
      result.kind = LineResult::Kind::Ignored;
      return result;
    }
    Fail pre;
    std::string content;
    std::string_view text = buf;
    if (prefregex) {
      if (!search(*prefregex, buf)) return result;
      for (int g = 0; g < kGroups; ++g)
        if (auto v = match.first(prefregex->groups[g])) pre.v[g] = std::string(*v);
      if (pre.v[kGContent] && !pre.v[kGContent]->empty()) {
        content = *pre.v[kGContent] + "\n";
        text = content;
      }
      pre.v[kGContent].reset();
    }
    for (std::size_t i = 0; i < failregex.size(); ++i) {
      const auto& r = failregex[i];
      if (!search(r, text)) continue;
      Fail fail = pre;
      for (int g = 0; g < kGroups; ++g)
        if (auto v = match.first(r.groups[g])) fail.v[g] = std::string(*v);
      if (!fail.v[kGUser] || fail.v[kGUser]->empty())
        if (auto alt = match.first(r.alt_user); alt && !alt->empty()) fail.v[kGUser] = std::string(*alt);
      if (!ignoreregex.empty() && ignored(text)) {
        result.kind = LineResult::Kind::Ignored;
        return result;
      }
      result.regex_index = static_cast<int>(i);
      if (fail.v[kGMlfid]) {
        std::string id = *fail.v[kGMlfid];
        fail = merge(id, std::move(fail));
        if (fail.v[kGNofail]) return result;  // fail2ban returns no failure: a "missed" line
        if (!fail.v[kGIp4] && !fail.v[kGIp6] && !fail.v[kGDns] && !fail.v[kGFid]) {
          // No host yet: fail2ban marks it pending and takes the host from a later line.
          if (auto it = mlfid.find(id); it != mlfid.end()) it->second.pending = true;
          result.kind = LineResult::Kind::Matched;
          return result;
        }
      } else if (fail.v[kGNofail]) {
        result.kind = LineResult::Kind::Ignored;
        return result;
      }
      result.kind = LineResult::Kind::Matched;
      lines.clear();
      if (fail.v[kGUser]) result.user = *fail.v[kGUser];
      if (fail.v[kGIp4]) {
        result.host = *fail.v[kGIp4];
        result.host_is_ip = true;
      } else if (fail.v[kGIp6]) {
        result.host = *fail.v[kGIp6];
        result.host_is_ip = true;
      } else if (fail.v[kGDns]) {
        result.host = *fail.v[kGDns];
      } else if (fail.v[kGFid]) {
        result.host = *fail.v[kGFid];
      }
      return result;
    }
    return result;
  }
};

std::vector<std::string> regexes_that_give_up(const FilterDefinition& definition) {
  // The tail holds the characters fail2ban regexes require literally, so PCRE2's "this
  // character must occur" shortcut does not end the search before any backtracking.
  std::vector<std::string> probes;
  for (char c : std::string("a1 .-/:=\"A_"))
    for (std::size_t n : {40u, 4000u})
      probes.push_back(std::string(n, c) + "\x01 - : / = \" [ ] ( ) from client user host port\n");
  std::vector<std::string> out;
  Match match;
  auto probe = [&](const std::vector<std::string>& sources) {
    for (const auto& source : sources) {
      Compiled c(source, definition.maxlines > 1);
      for (const auto& line : probes)
        if (!c.regex.search(line, match) && match.limit_hit()) {
          out.push_back(source);
          break;
        }
    }
  };
  probe(definition.failregex);
  probe(definition.ignoreregex);
  return out;
}

Filter::Filter(const FilterDefinition& definition) : impl_(new Impl(definition)) {}
Filter::~Filter() = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

LineResult Filter::process(std::string_view line, std::chrono::system_clock::time_point now) {
  impl_->gave_up = false;
  auto result = impl_->process(line, now);
  result.limit_hit = impl_->gave_up;
  return result;
}

const FilterDefinition& Filter::definition() const { return impl_->def; }

}  // namespace snigate::watch
