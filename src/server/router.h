// brig::server::Router: which handler answers a method and a path. The table is data, so
// that the OpenAPI test (tests/server/openapi_test.cc) can check that every route the server
// answers is documented in docs/openapi.json, and nothing more.
//
// Patterns are paths of segments: a literal ("sessions"), a parameter ("{thread_id}", one
// segment), or a rest parameter ("{path...}", the last one: every remaining segment, joined
// with '/', with a leading '/'). Each segment of the request path is percent-decoded on its
// own; a decoded segment that is "." or "..", empty, or holds a NUL never matches a
// parameter (404), nor does a rest whose components are such ("..%2fetc"), so "%2e%2e"
// cannot climb. Values are then checked by the handlers'
// own rules (thread_id, names/path_rules.h).
#ifndef BRIG_SERVER_ROUTER_H_
#define BRIG_SERVER_ROUTER_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ostream>
#include <boost/beast/http/verb.hpp>

namespace brig::server {

using Params = std::map<std::string, std::string, std::less<>>;

// "a%20b" -> "a b". nullopt for a malformed escape ("%4", "%zz").
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space = false);
// "a=1&b=%2F" -> {a: "1", b: "/"}; nullopt for a malformed escape.
std::optional<Params> ParseQuery(std::string_view query);

template <typename Handler>
class Router {
 public:
  struct Route {
    boost::beast::http::verb method;
    std::string pattern;  // as written, e.g. "/v1/sessions/{thread_id}"
    Handler handler;
    std::vector<std::string> segments;
  };
  enum class Outcome { kMatched, kNotFound, kMethodNotAllowed, kBadPath };
  struct Match {
    Outcome outcome = Outcome::kNotFound;
    const Route* route = nullptr;
    Params params;
  };

  void Add(boost::beast::http::verb method, std::string pattern, Handler handler) {
    Route r{method, pattern, std::move(handler), Split(pattern)};
    routes_.push_back(std::move(r));
  }
  const std::vector<Route>& routes() const { return routes_; }

  // `path`: the request target without its query, still percent-encoded.
  Match Find(boost::beast::http::verb method, std::string_view path) const {
    Match m;
    std::vector<std::string> segs;
    if (path.empty() || path[0] != '/') return {Outcome::kBadPath, nullptr, {}};
    for (std::string_view raw : Split(path)) {
      auto decoded = PercentDecode(raw);
      if (!decoded) return {Outcome::kBadPath, nullptr, {}};
      segs.push_back(std::move(*decoded));
    }
    bool path_known = false;
    for (const Route& r : routes_) {
      Params params;
      if (!MatchSegments(r.segments, segs, &params)) continue;
      path_known = true;
      // HEAD is answered by every GET route.
      if (r.method == method || (method == boost::beast::http::verb::head && r.method == boost::beast::http::verb::get))
        return {Outcome::kMatched, &r, std::move(params)};
    }
    m.outcome = path_known ? Outcome::kMethodNotAllowed : Outcome::kNotFound;
    return m;
  }

 private:
  static std::vector<std::string> Split(std::string_view path) {
    std::vector<std::string> out;
    size_t i = 1;
    if (path.size() <= 1) return out;
    while (true) {
      size_t j = path.find('/', i);
      out.emplace_back(path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
      if (j == std::string_view::npos) break;
      i = j + 1;
    }
    return out;
  }
  static bool SafeParam(const std::string& s) {
    return !s.empty() && s != "." && s != ".." && s.find('\0') == std::string::npos;
  }
  static bool MatchSegments(const std::vector<std::string>& pattern, const std::vector<std::string>& segs, Params* params) {
    for (size_t i = 0; i < pattern.size(); ++i) {
      const std::string& p = pattern[i];
      bool is_param = p.size() > 2 && p.front() == '{' && p.back() == '}';
      if (is_param && p.ends_with("...}")) {
        if (i >= segs.size()) return false;
        std::string joined;
        for (size_t k = i; k < segs.size(); ++k) {
          // The rest is a path: no component may be "", "." or "..", also where a decoded
          // "%2f" made one ("..%2fetc").
          if (!SafeParam(segs[k])) return false;
          joined += "/" + segs[k];
        }
        for (size_t a = 1, b; a <= joined.size(); a = b + 1) {
          b = joined.find('/', a);
          if (b == std::string::npos) b = joined.size();
          if (!SafeParam(joined.substr(a, b - a))) return false;
        }
        (*params)[p.substr(1, p.size() - 5)] = joined;
        return true;
      }
      if (i >= segs.size()) return false;
      if (is_param) {
        if (!SafeParam(segs[i])) return false;
        (*params)[p.substr(1, p.size() - 2)] = segs[i];
      } else if (p != segs[i]) {
        return false;
      }
    }
    return pattern.size() == segs.size();
  }

  std::vector<Route> routes_;
};

}  // namespace brig::server

#endif  // BRIG_SERVER_ROUTER_H_
