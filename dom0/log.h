// lull::dom0 logging: one line per event to stderr, or to the journal.
//
// "journal" writes sd-daemon(3) priority prefixes ("<3>error ...") on stderr, which
// systemd's journal parses into priorities for a service started by the unit in
// dom0/lulld.service; "stderr" writes plain lines with a level word. No library needed.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace lull::dom0 {

enum class LogLevel { kError = 3, kWarning = 4, kInfo = 6, kDebug = 7 };

inline bool& LogJournal() { static bool j = false; return j; }

inline void Log(LogLevel lvl, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline void Log(LogLevel lvl, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (LogJournal()) {
    std::fprintf(stderr, "<%d>%s\n", static_cast<int>(lvl), buf);
  } else {
    const char* w = lvl == LogLevel::kError ? "error" : lvl == LogLevel::kWarning ? "warning"
                  : lvl == LogLevel::kInfo ? "info" : "debug";
    std::fprintf(stderr, "lulld %s: %s\n", w, buf);
  }
}

}  // namespace lull::dom0
