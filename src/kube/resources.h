// The Kubernetes resources annals knows by name: one table for the watch
// collector (what it lists and watches, and at which API path), the
// questions (a kind, singular or short name to its resource: "Pod", "po",
// "pods" -> pods) and kubectl audit. Pure data and string functions: no
// I/O, linked into the fuzz build too.
#ifndef ANNALS_KUBE_RESOURCES_H_
#define ANNALS_KUBE_RESOURCES_H_

#include <string>
#include <string_view>
#include <vector>

namespace annals::kube {

struct ResourceInfo {
  std::string_view resource;  // plural, lower case: "pods"
  std::string_view kind;      // "Pod"
  std::string_view group;     // "" = the core group
  std::string_view version;   // preferred version: "v1"
  bool namespaced = true;
  bool watched_by_default = false;  // by annals serve --watch / collect without --watch-resources
  std::vector<std::string_view> short_names;  // kubectl's: "po"
};

// Every known resource, in the order the collector starts them.
const std::vector<ResourceInfo>& KnownResources();
// By plural, kind or singular (any case) or short name; nullptr if unknown.
const ResourceInfo* FindResource(std::string_view name);
// The canonical (plural, lower case) resource for a kind, singular, short
// name or plural; an unknown kind is pluralized as Kubernetes does
// ("Gateway" -> "gateways", "NetworkPolicy" -> "networkpolicies",
// "IngressClass" -> "ingressclasses").
std::string ResourceFor(std::string_view kind);

}  // namespace annals::kube

#endif  // ANNALS_KUBE_RESOURCES_H_
