// The search answer's events in the OCSF schema security tools read: API
// Activity (class 6003, category Application Activity), one object per
// event, from the fields of the normalized view (docs/sources.md "OCSF").
// Pure functions, thread-safe.
#ifndef ANNALS_STATE_OCSF_H_
#define ANNALS_STATE_OCSF_H_

#include <nlohmann/json.hpp>
#include <string_view>

namespace annals::state {

// OCSF activity_id of an action: 1 Create, 2 Read, 3 Update, 4 Delete,
// 99 Other. A Kubernetes verb by name; a cloud operation by the verb its
// last segment starts with (CreateCluster, DescribeInstances,
// .../DIAGNOSTICSETTINGS/WRITE).
int OcsfActivity(std::string_view verb, bool cloud);

// One event of a /v1/events answer (its "events" member) as an OCSF API
// Activity object.
nlohmann::json OcsfApiActivity(const nlohmann::json& event);

}  // namespace annals::state

#endif  // ANNALS_STATE_OCSF_H_
