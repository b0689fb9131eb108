// lull::migrate::HaproxyRedirect - switch-over of client connections after a migration.
//
// Where a HAProxy fronts the guest (the cloning module runs one; any other works too),
// the guest's clients reach it as a backend server. After the commit, this points that
// server at the guest's new address over HAProxy's runtime API (the admin Unix socket):
//   set server <backend>/<server> addr <addr> port <port>
//   set server <backend>/<server> state ready
// New connections go to the new host at once; HAProxy's retries with redispatch cover
// those in flight. Plug it into MigrateOptions::redirect. An error names the socket, the
// command and HAProxy's answer.
#pragma once

#include <cstdint>
#include <string>

#include "forecast/status.h"

namespace lull::migrate {

lull::Status HaproxyRedirect(const std::string& admin_socket, const std::string& backend_server,
                             const std::string& addr, uint16_t port);

// One runtime API command; *reply gets HAProxy's answer (exposed for tests and tools).
lull::Status HaproxyCommand(const std::string& admin_socket, const std::string& cmd,
                            std::string* reply);

}  // namespace lull::migrate
