// Numbers in error messages, written as JavaScript would print them (pure C++, no napi.h).
#pragma once

#include <charconv>
#include <cmath>
#include <string>

namespace smoothce {

// Shortest round-trip text for a double: "NaN", "Infinity", "-Infinity", "16777216", "2.5".
inline std::string js_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

}  // namespace smoothce
