// Feeds arbitrary bytes to the auth files' parsers (the roles config and
// the bearer-token file). Neither may crash; what parses must hold up:
// every token hash is 64 lowercase hex digits with a non-empty user, every
// binding's roles are known bits, and resolving any group set never grants
// a read role nobody was bound to.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/auth_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  using namespace annals::auth;

  auto tokens = ParseTokensFile(input);
  if (tokens.ok()) {
    for (const auto& [hash, id] : *tokens) {
      if (hash.size() != 64 || id.user.empty()) std::abort();
      for (char c : hash)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
      for (const auto& g : id.groups)
        if (g.empty()) std::abort();
    }
  }

  auto config = ParseAuthConfig(input);
  if (!config.ok()) return 0;
  uint8_t any = config->anonymous | config->authenticated.roles;
  std::vector<std::string> groups;
  for (const auto& [name, b] : config->groups) {
    if (b.roles & ~0x0f) std::abort();
    any |= b.roles;
    groups.push_back(name);
  }
  for (const auto& [name, b] : config->users) any |= b.roles;
  Permissions anon = Resolve(*config, "", groups, false);
  if (anon.roles != config->anonymous) std::abort();
  Permissions all = Resolve(*config, "someone", groups, true);
  if ((all.roles & ~any) != 0) std::abort();
  for (const auto& src : all.ingest_sources)
    if (src != "k8s-audit" && src != "events" && src != "tcp" && src != "k8s-watch") std::abort();
  return 0;
}
