// The control socket of `lull-clone serve`: one request line, one reply, then close.
//
// Requests (the lullctl verbs):
//   clones                     -> one line per shadow: id server state port vcpus pid ms
//   clone-pool DOMAIN N        -> resizes DOMAIN's pool to N shadows, "ok ..." or "error: ..."
//   quit                       -> stops the server
// Words are separated by blanks, so DOMAIN is a name of [A-Za-z0-9_-] (ValidInstanceName)
// and a request with a word too many or too few is an error, not read in part.
// A reply starting with "error: " is a failure; the CLI exits 1 and prints it.
#pragma once

#include <functional>
#include <string>

#include "forecast/status.h"

namespace lull::clone {

class ControlServer {
 public:
  ~ControlServer();
  Status Listen(const std::string& path);
  // Serves the requests waiting now (up to timeout_ms for the first), each through fn.
  void Poll(int timeout_ms, const std::function<std::string(const std::string&)>& fn);

 private:
  int fd_ = -1;
  std::string path_;
};

// Sends one request line, returns the reply.
Status ControlCall(const std::string& path, const std::string& request, std::string* reply);

}  // namespace lull::clone
