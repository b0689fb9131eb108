// lull::Status - the result of an operation that can fail, in LevelDB's style.
//
// A Status is either OK or carries a code and a message that names what was wrong
// ("bitbrains 105.csv line 812: CPU usage [%] is 'abc', not a number"). It is cheap to
// return when OK (no allocation). forecast/ owns it because it is the lowest C++ layer
// that reports errors; dom0/ uses the same type. shm/ speaks negative errno (a C ABI).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace lull {

class Status {
 public:
  enum class Code { kOk = 0, kInvalidArgument, kNotFound, kIoError, kCorruption,
                    kUnavailable, kPermissionDenied, kAlreadyExists, kInternal };

  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view m) { return {Code::kInvalidArgument, m}; }
  static Status NotFound(std::string_view m) { return {Code::kNotFound, m}; }
  static Status IoError(std::string_view m) { return {Code::kIoError, m}; }
  static Status Corruption(std::string_view m) { return {Code::kCorruption, m}; }
  static Status Unavailable(std::string_view m) { return {Code::kUnavailable, m}; }
  static Status PermissionDenied(std::string_view m) { return {Code::kPermissionDenied, m}; }
  static Status AlreadyExists(std::string_view m) { return {Code::kAlreadyExists, m}; }
  static Status Internal(std::string_view m) { return {Code::kInternal, m}; }

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->first : Code::kOk; }
  const std::string& message() const {
    static const std::string kEmpty;
    return state_ ? state_->second : kEmpty;
  }
  // "invalid argument: <message>", or "OK".
  std::string ToString() const {
    if (ok()) return "OK";
    return std::string(CodeName(code())) + ": " + message();
  }
  static const char* CodeName(Code c) {
    switch (c) {
      case Code::kOk: return "OK";
      case Code::kInvalidArgument: return "invalid argument";
      case Code::kNotFound: return "not found";
      case Code::kIoError: return "I/O error";
      case Code::kCorruption: return "corruption";
      case Code::kUnavailable: return "unavailable";
      case Code::kPermissionDenied: return "permission denied";
      case Code::kAlreadyExists: return "already exists";
      case Code::kInternal: return "internal error";
    }
    return "unknown";
  }

 private:
  Status(Code c, std::string_view m)
      : state_(std::make_shared<const std::pair<Code, std::string>>(c, std::string(m))) {}
  // Shared so that copying an error is cheap; immutable once made.
  std::shared_ptr<const std::pair<Code, std::string>> state_;
};

}  // namespace lull
