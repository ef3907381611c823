// YAML configuration files (kubeconfigs, ~/.config/annals/config.yaml) read
// with libyaml into a JSON value: mappings become objects, sequences
// arrays, every scalar a string (a YAML `true` is "true"). Only the first
// document is read; aliases expand to their anchor's value, tags are not
// interpreted. Pure, thread-safe.
#ifndef ANNALS_KUBE_YAML_H_
#define ANNALS_KUBE_YAML_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace annals::kube {

// InvalidArgument naming `what` (and the line) for text that is not YAML,
// nests more than 32 levels or expands past 2^20 values. An empty document
// is null.
StatusOr<nlohmann::json> YamlToJson(std::string_view text, const std::string& what);

}  // namespace annals::kube

#endif  // ANNALS_KUBE_YAML_H_
