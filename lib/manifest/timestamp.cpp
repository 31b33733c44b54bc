// Datetimes as pydantic v2 reads and writes them (interop spec 1.4, 1.5).
#include <cstdio>
#include <shardy/manifest.hpp>

namespace shardy {
namespace {

using namespace std::chrono;

struct Cursor {
  std::string_view s;
  std::size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  bool digits(int n, int& out) {
    if (i + static_cast<std::size_t>(n) > s.size()) return false;
    int v = 0;
    for (int k = 0; k < n; ++k) {
      char c = s[i + static_cast<std::size_t>(k)];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    i += static_cast<std::size_t>(n);
    out = v;
    return true;
  }
  bool eat(char c) {
    if (peek() != c || done()) return false;
    ++i;
    return true;
  }
};

// Python datetimes span years 1-9999; anything else fails to validate there too.
// (Compared as time points: std::chrono::year itself only spans +-32767.)
bool in_python_range(Timestamp t) noexcept {
  constexpr sys_days lo{year{1} / 1 / 1}, hi{year{10000} / 1 / 1};
  return t >= Timestamp(lo) && t < Timestamp(hi);
}

// Integer or decimal Unix time ("1700000000", "-5", "1700000000.25"). Like pydantic
// (speedate), magnitudes above 2e10 are taken as milliseconds.
std::optional<Timestamp> parse_unix(std::string_view s) noexcept {
  std::size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  std::size_t int_start = i;
  long double v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
  if (i == int_start || i - int_start > 20) return std::nullopt;
  if (i < s.size() && s[i] == '.') {
    ++i;
    long double scale = 0.1L;
    std::size_t frac_start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      v += (s[i++] - '0') * scale;
      scale /= 10;
    }
    if (i == frac_start) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (v > 2e10L) v /= 1000;
  if (v > 3e11L) return std::nullopt;  // beyond year 9999 (and keeps the microseconds in range)
  auto us = static_cast<std::int64_t>(v * 1000000.0L + 0.5L);
  Timestamp t(microseconds(neg ? -us : us));
  if (!in_python_range(t)) return std::nullopt;
  return t;
}

void append_date_time(std::string& out, Timestamp t) {
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss<microseconds> tod{t - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02lld", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long>(tod.hours().count()), static_cast<long>(tod.minutes().count()),
                static_cast<long long>(tod.seconds().count()));
  out += buf;
}

long long fraction_us(Timestamp t) {
  auto us = t.time_since_epoch().count() % 1000000;
  return us < 0 ? us + 1000000 : us;
}

}  // namespace

std::optional<Timestamp> parse_timestamp(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  if (s.size() < 10 || s[4] != '-') return parse_unix(s);
  Cursor c{s};
  int y = 0, mo = 0, d = 0;
  if (!c.digits(4, y) || !c.eat('-') || !c.digits(2, mo) || !c.eat('-') || !c.digits(2, d))
    return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || y == 0) return std::nullopt;  // Python has no year 0
  sys_days date{ymd};
  if (c.done()) return Timestamp(date);  // a bare date is midnight UTC (pydantic lax mode)
  char sep = c.peek();
  if (sep != 'T' && sep != 't' && sep != ' ' && sep != '_') return std::nullopt;
  ++c.i;
  int hh = 0, mm = 0, ss = 0;
  if (!c.digits(2, hh) || !c.eat(':') || !c.digits(2, mm)) return std::nullopt;
  if (c.eat(':') && !c.digits(2, ss)) return std::nullopt;
  if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  long long us = 0;
  if (c.eat('.') || c.eat(',')) {
    int n = 0;
    while (!c.done() && c.peek() >= '0' && c.peek() <= '9') {
      if (n < 6) us = us * 10 + (c.peek() - '0');
      ++n;
      ++c.i;
    }
    if (n == 0) return std::nullopt;
    for (int k = n; k < 6; ++k) us *= 10;  // digits beyond 6 are dropped
  }
  minutes offset{0};
  if (c.eat('Z') || c.eat('z')) {
  } else if (c.peek() == '+' || c.peek() == '-') {
    bool neg = c.peek() == '-';
    ++c.i;
    int oh = 0, om = 0;
    if (!c.digits(2, oh)) return std::nullopt;
    if (!c.done()) {
      c.eat(':');
      if (!c.digits(2, om)) return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset = minutes(oh * 60 + om);
    if (neg) offset = -offset;
  }
  if (!c.done()) return std::nullopt;
  Timestamp t = Timestamp(date) + hours(hh) + minutes(mm) + seconds(ss) + microseconds(us) - offset;
  if (!in_python_range(t)) return std::nullopt;  // e.g. 0001-01-01T00:00:00+01:00
  return t;
}

std::string format_timestamp(Timestamp t) {
  std::string out;
  append_date_time(out, t);
  if (long long us = fraction_us(t)) {
    char buf[16];
    std::snprintf(buf, sizeof buf, ".%06lld", us);
    out += buf;
  }
  out.push_back('Z');
  return out;
}

std::string format_timestamp_dir(Timestamp t) {
  std::string out;
  append_date_time(out, t);
  char buf[16];
  std::snprintf(buf, sizeof buf, ".%06lldZ", fraction_us(t));
  out += buf;
  return out;
}

}  // namespace shardy
