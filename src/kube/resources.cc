#include "kube/resources.h"

#include <algorithm>
#include <cctype>

namespace annals::kube {

const std::vector<ResourceInfo>& KnownResources() {
  static const std::vector<ResourceInfo> kAll = {
      // Watched by default: what the questions need (pods and their IPs,
      // owners, Services and their endpoints, nodes, namespaces) and who
      // may do what (ServiceAccounts, RBAC, network policies).
      {"pods", "Pod", "", "v1", true, true, {"po"}},
      {"services", "Service", "", "v1", true, true, {"svc"}},
      {"endpointslices", "EndpointSlice", "discovery.k8s.io", "v1", true, true, {}},
      {"nodes", "Node", "", "v1", false, true, {"no"}},
      {"namespaces", "Namespace", "", "v1", false, true, {"ns"}},
      {"replicasets", "ReplicaSet", "apps", "v1", true, true, {"rs"}},
      {"deployments", "Deployment", "apps", "v1", true, true, {"deploy"}},
      {"statefulsets", "StatefulSet", "apps", "v1", true, true, {"sts"}},
      {"daemonsets", "DaemonSet", "apps", "v1", true, true, {"ds"}},
      {"jobs", "Job", "batch", "v1", true, true, {}},
      {"cronjobs", "CronJob", "batch", "v1", true, true, {"cj"}},
      {"serviceaccounts", "ServiceAccount", "", "v1", true, true, {"sa"}},
      {"roles", "Role", "rbac.authorization.k8s.io", "v1", true, true, {}},
      {"rolebindings", "RoleBinding", "rbac.authorization.k8s.io", "v1", true, true, {}},
      {"clusterroles", "ClusterRole", "rbac.authorization.k8s.io", "v1", false, true, {}},
      {"clusterrolebindings", "ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", false, true, {}},
      {"networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", true, true, {"netpol"}},
      // Known by name, watched only when asked for.
      {"configmaps", "ConfigMap", "", "v1", true, false, {"cm"}},
      {"secrets", "Secret", "", "v1", true, false, {}},
      {"endpoints", "Endpoints", "", "v1", true, false, {"ep"}},
      {"persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", true, false, {"pvc"}},
      {"persistentvolumes", "PersistentVolume", "", "v1", false, false, {"pv"}},
      {"events", "Event", "", "v1", true, false, {"ev"}},
      {"replicationcontrollers", "ReplicationController", "", "v1", true, false, {"rc"}},
      {"ingresses", "Ingress", "networking.k8s.io", "v1", true, false, {"ing"}},
      {"ingressclasses", "IngressClass", "networking.k8s.io", "v1", false, false, {}},
      {"storageclasses", "StorageClass", "storage.k8s.io", "v1", false, false, {"sc"}},
      {"priorityclasses", "PriorityClass", "scheduling.k8s.io", "v1", false, false, {"pc"}},
      {"customresourcedefinitions", "CustomResourceDefinition", "apiextensions.k8s.io", "v1", false, false,
       {"crd", "crds"}},
      {"mutatingwebhookconfigurations", "MutatingWebhookConfiguration", "admissionregistration.k8s.io", "v1", false,
       false, {}},
      {"validatingwebhookconfigurations", "ValidatingWebhookConfiguration", "admissionregistration.k8s.io", "v1",
       false, false, {}},
  };
  return kAll;
}

namespace {

bool EqualFold(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

const ResourceInfo* FindResource(std::string_view name) {
  for (const auto& r : KnownResources()) {
    if (EqualFold(name, r.resource) || EqualFold(name, r.kind)) return &r;
    for (std::string_view s : r.short_names)
      if (EqualFold(name, s)) return &r;
  }
  return nullptr;
}

std::string ResourceFor(std::string_view kind) {
  if (const ResourceInfo* r = FindResource(kind)) return std::string(r->resource);
  std::string k(kind);
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  if (k.ends_with("ss")) return k + "es";  // priorityclass, ingressclass
  if (k.ends_with("s")) return k;
  if (k.size() >= 2 && k.ends_with("y") && std::string_view("aeiou").find(k[k.size() - 2]) == std::string_view::npos)
    return k.substr(0, k.size() - 1) + "ies";  // policy -> policies, but gateway -> gateways
  return k + "s";
}

}  // namespace annals::kube
