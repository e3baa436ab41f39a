#include "watch/filter_file.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace snigate::watch {

namespace fs = std::filesystem;

namespace {

using Section = std::map<std::string, std::string>;
using Ini = std::map<std::string, Section>;

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Python configparser as fail2ban configures it: '#'/';' comment lines, ' ;' inline
// comments, "key = value" or "key: value", indented continuation lines, keys lower-cased.
Ini parse_ini(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw FilterFileError(path.string() + ": cannot read");
  Ini ini;
  std::string section, key, line;
  std::size_t key_indent = 0;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string stripped = trim(line);
    if (!stripped.empty() && (stripped[0] == '#' || stripped[0] == ';')) continue;
    if (auto pos = line.find(" ;"); pos != std::string::npos) line.resize(pos);
    std::size_t indent = line.find_first_not_of(" \t");
    if (stripped.empty()) {
      if (!key.empty()) ini[section][key] += "\n";
      continue;
    }
    if (!key.empty() && indent > key_indent) {  // continuation of the current value
      ini[section][key] += "\n" + trim(line);
      continue;
    }
    if (stripped.front() == '[' && stripped.back() == ']') {
      section = stripped.substr(1, stripped.size() - 2);
      ini[section];
      key.clear();
      continue;
    }
    auto delim = stripped.find_first_of("=:");
    if (delim == std::string::npos || section.empty())
      throw FilterFileError(path.string() + ":" + std::to_string(lineno) +
                            ": expected 'key = value' or '[section]'");
    key = lower(trim(stripped.substr(0, delim)));
    key_indent = indent;
    ini[section][key] = trim(stripped.substr(delim + 1));
  }
  for (auto& [name, sec] : ini)
    for (auto& [k, v] : sec) v = trim(v);  // blank lines kept inside values, not at the end
  return ini;
}

void merge(Ini& into, const Ini& from) {
  for (const auto& [name, sec] : from)
    for (const auto& [k, v] : sec) into[name][k] = v;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// fail2ban's include order: `before` files, the file itself, `after` files; missing
// included files are skipped, as fail2ban does (common.local usually does not exist).
void read_with_includes(const fs::path& path, Ini& into, int depth) {
  if (depth > 10) throw FilterFileError(path.string() + ": includes nested too deeply");
  Ini own = parse_ini(path);
  std::vector<std::string> before, after;
  if (auto it = own.find("INCLUDES"); it != own.end()) {
    if (auto b = it->second.find("before"); b != it->second.end()) before = words(b->second);
    if (auto a = it->second.find("after"); a != it->second.end()) after = words(a->second);
    own.erase(it);
  }
  auto include = [&](const std::string& name) {
    fs::path p = fs::path(name).is_absolute() ? fs::path(name) : path.parent_path() / name;
    if (fs::exists(p)) read_with_includes(p, into, depth + 1);
  };
  for (const auto& b : before) include(b);
  merge(into, own);
  for (const auto& a : after) include(a);
}

class Resolver {
 public:
  Resolver(const Ini& ini, const std::map<std::string, std::string>& overrides)
      : ini_(ini), overrides_(overrides) {}

  // configparser get(): vars (jail arguments) > section > [DEFAULT], then %(name)s.
  std::optional<std::string> get(const std::string& section, const std::string& key,
                                 int depth = 0) const {
    auto raw = lookup(section, key);
    if (!raw) return std::nullopt;
    return interpolate(*raw, section, depth);
  }

  // fail2ban's recursive <tag> substitution over the combined options; tags that name no
  // option (<HOST>, <F-USER>, (?P<name>...)) stay as they are.
  std::string substitute_tags(std::string value, const Section& combined) const {
    for (int round = 0; round < 50; ++round) {
      bool changed = false;
      std::size_t pos = 0;
      while ((pos = value.find('<', pos)) != std::string::npos) {
        auto end = value.find_first_of("<> ", pos + 1);
        if (end == std::string::npos) break;
        if (value[end] != '>' || end == pos + 1) {
          pos = value[end] == '<' ? end : end + 1;
          continue;
        }
        std::string tag = value.substr(pos + 1, end - pos - 1);
        std::optional<std::string> repl;
        if (auto it = combined.find(tag); it != combined.end()) repl = it->second;
        else if (auto it2 = combined.find(lower(tag)); it2 != combined.end()) repl = it2->second;
        else repl = qualified(tag);
        if (!repl) {
          pos = end + 1;
          continue;
        }
        value.replace(pos, end - pos + 1, *repl);
        changed = true;
        pos += repl->size();
      }
      if (!changed) return value;
    }
    throw FilterFileError(source_ + ": tag substitution does not end (recursive tags?)");
  }

  std::string source_;

 private:
  std::optional<std::string> lookup(const std::string& section, const std::string& key) const {
    if (auto o = overrides_.find(key); o != overrides_.end()) return o->second;
    if (auto s = ini_.find(section); s != ini_.end())
      if (auto v = s->second.find(key); v != s->second.end()) return v->second;
    if (auto d = ini_.find("DEFAULT"); d != ini_.end())
      if (auto v = d->second.find(key); v != d->second.end()) return v->second;
    return std::nullopt;
  }

  // "section/option" names another section (common.conf: <lt_file/__prefix_line>).
  std::optional<std::string> qualified(const std::string& name) const {
    // Section names keep their case (guacamole.conf: <L_catalina/maxlines>); options do not.
    auto slash = name.find('/');
    if (slash == std::string::npos) return get("Definition", lower(name));
    std::string section = name.substr(0, slash), key = lower(name.substr(slash + 1));
    if (section == "known") return std::nullopt;
    if (!ini_.count(section)) return std::nullopt;
    return get(section, key);
  }

  std::string interpolate(const std::string& value, const std::string& section,
                          int depth) const {
    if (depth > 10) throw FilterFileError(source_ + ": %(...)s interpolation too deep");
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] != '%') {
        out += value[i];
        continue;
      }
      if (i + 1 < value.size() && value[i + 1] == '%') {
        out += '%';
        ++i;
        continue;
      }
      if (i + 1 < value.size() && value[i + 1] == '(') {
        auto close = value.find(")s", i);
        if (close == std::string::npos)
          throw FilterFileError(source_ + ": bad interpolation in '" + value + "'");
        std::string name = lower(value.substr(i + 2, close - i - 2));
        std::optional<std::string> v;
        if (auto slash = name.find('/'); slash != std::string::npos)
          v = get(name.substr(0, slash), name.substr(slash + 1), depth + 1);
        else
          v = get(section, name, depth + 1);
        if (!v)
          throw FilterFileError(source_ + ": %(" + name + ")s is not defined (in [" + section +
                                "])");
        out += *v;
        i = close + 1;
        continue;
      }
      throw FilterFileError(source_ + ": '%' must be followed by '%' or '(' in '" + value + "'");
    }
    return out;
  }

  const Ini& ini_;
  const std::map<std::string, std::string>& overrides_;
};

std::vector<std::string> split_lines(const std::string& value) {
  std::vector<std::string> out;
  std::istringstream in(value);
  for (std::string line; std::getline(in, line);)
    if (auto t = trim(line); !t.empty()) out.push_back(t);
  return out;
}

// "sshd[mode=aggressive, publickey=any]" -> name and arguments.
std::string parse_spec(const std::string& spec, std::map<std::string, std::string>& args) {
  auto open = spec.find('[');
  if (open == std::string::npos || spec.back() != ']') return spec;
  std::string inner = spec.substr(open + 1, spec.size() - open - 2);
  std::size_t pos = 0;
  while (pos < inner.size()) {
    auto eq = inner.find('=', pos);
    if (eq == std::string::npos) throw FilterFileError("filter '" + spec + "': expected key=value");
    std::string key = lower(trim(inner.substr(pos, eq - pos)));
    std::size_t v = eq + 1;
    while (v < inner.size() && inner[v] == ' ') ++v;
    std::string value;
    if (v < inner.size() && (inner[v] == '"' || inner[v] == '\'')) {
      auto q = inner.find(inner[v], v + 1);
      if (q == std::string::npos) throw FilterFileError("filter '" + spec + "': unclosed quote");
      value = inner.substr(v + 1, q - v - 1);
      pos = inner.find(',', q);
    } else {
      auto comma = inner.find(',', v);
      value = trim(inner.substr(v, comma == std::string::npos ? std::string::npos : comma - v));
      pos = comma;
    }
    args.emplace(key, value);
    if (pos == std::string::npos) break;
    ++pos;
  }
  return spec.substr(0, open);
}

}  // namespace

FilterDefinition load_filter(const std::string& spec,
                             const std::map<std::string, std::string>& overrides,
                             const std::string& filter_dir) {
  std::map<std::string, std::string> args;
  std::string name = parse_spec(spec, args);
  for (const auto& [k, v] : overrides) args[lower(k)] = v;

  fs::path path = name;
  if (name.find('/') == std::string::npos) {
    path = fs::path(filter_dir) / name;
    if (path.extension() != ".conf") path += ".conf";
  }
  if (!fs::exists(path)) throw FilterFileError(path.string() + ": no such filter file");

  Ini ini;
  read_with_includes(path, ini, 0);
  fs::path local = path;
  local.replace_extension(".local");
  if (fs::exists(local)) read_with_includes(local, ini, 0);
  if (!ini.count("Definition"))
    throw FilterFileError(path.string() + ": no [Definition] section");

  Resolver resolver(ini, args);
  resolver.source_ = path.string();

  // Combined options as fail2ban's FilterReader builds them: [Definition] (with [DEFAULT]),
  // then [Init], then the jail's arguments.
  // An option whose %(...)s cannot be resolved only fails when it is used, as in Python.
  Section combined;
  std::map<std::string, std::string> unresolved;
  auto add = [&](const std::string& section, const std::string& key) {
    try {
      combined[key] = *resolver.get(section, key);
      unresolved.erase(key);
    } catch (const FilterFileError& e) {
      unresolved[key] = e.what();
    }
  };
  if (auto d = ini.find("DEFAULT"); d != ini.end())
    for (const auto& kv : d->second) add("Definition", kv.first);
  for (const auto& kv : ini.at("Definition")) add("Definition", kv.first);
  if (auto init = ini.find("Init"); init != ini.end())
    for (const auto& kv : init->second) add("Init", kv.first);
  for (const auto& [k, v] : args) combined[k] = v;

  auto option = [&](const std::string& key) -> std::string {
    if (auto bad = unresolved.find(key); bad != unresolved.end()) throw FilterFileError(bad->second);
    auto it = combined.find(key);
    return it == combined.end() ? "" : resolver.substitute_tags(it->second, combined);
  };

  FilterDefinition def;
  def.source = path.string();
  def.prefregex = trim(option("prefregex"));
  def.failregex = split_lines(option("failregex"));
  def.ignoreregex = split_lines(option("ignoreregex"));
  def.datepattern = trim(option("datepattern"));
  if (auto ml = trim(option("maxlines")); !ml.empty()) {
    try {
      def.maxlines = std::stoi(ml);
    } catch (const std::exception&) {
      throw FilterFileError(path.string() + ": maxlines '" + ml + "' is not a number");
    }
  }
  if (def.failregex.empty()) throw FilterFileError(path.string() + ": no failregex");
  return def;
}

}  // namespace snigate::watch
