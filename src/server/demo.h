// The demo's events (`annals serve --demo`, demo/SOURCES.md): 93 real
// public Kubernetes audit events, one per line as an audit log holds them,
// compiled into the binary (cmake/embed_file.cmake).
#ifndef ANNALS_SERVER_DEMO_H_
#define ANNALS_SERVER_DEMO_H_

#include <string_view>

namespace annals::server {

std::string_view DemoAuditLog();

}  // namespace annals::server

#endif  // ANNALS_SERVER_DEMO_H_
