// The URL paths annals serves (SPEC.md "HTTP API"). The one place that owns
// them: handlers, clients and tests use these constants.
#ifndef ANNALS_API_PATHS_H_
#define ANNALS_API_PATHS_H_

namespace annals::api::paths {

inline constexpr char kCheckpoint[] = "/log/checkpoint";
inline constexpr char kTilePrefix[] = "/log/tile/";       // + <L>/<N>[.p/<W>] or entries/...
inline constexpr char kLogRoot[] = "/log/";
inline constexpr char kEntriesPrefix[] = "/v1/entries/";  // + <index>
inline constexpr char kInclusionProof[] = "/v1/proof/inclusion";
inline constexpr char kConsistencyProof[] = "/v1/proof/consistency";
// The witness policy and what each witness did (docs/witness.md).
inline constexpr char kWitnesses[] = "/v1/witnesses";
inline constexpr char kIngestEvents[] = "/v1/ingest/events";
inline constexpr char kIngestK8sAudit[] = "/v1/ingest/k8s-audit";
inline constexpr char kIngestK8sWatch[] = "/v1/ingest/k8s-watch";
// Cloud audit records as the clouds export them (docs/sources.md).
inline constexpr char kIngestAwsCloudTrail[] = "/v1/ingest/aws-cloudtrail";
inline constexpr char kIngestGcpAudit[] = "/v1/ingest/gcp-audit";
inline constexpr char kIngestAzureActivity[] = "/v1/ingest/azure-activity";
inline constexpr char kState[] = "/v1/state";
inline constexpr char kPodsByIpPrefix[] = "/v1/pods/by-ip/";  // + <ip>
inline constexpr char kEnrichFlows[] = "/v1/enrich/flows";
inline constexpr char kHistory[] = "/v1/history";
inline constexpr char kClusters[] = "/v1/clusters";  // the clusters the projection's objects are filed under
inline constexpr char kEvents[] = "/v1/events";
inline constexpr char kWatch[] = "/v1/watch";
// Redacted values (docs/security.md "Secrets"): admin only.
inline constexpr char kSealed[] = "/v1/sealed";  // GET ?index=N&path=P or ?commitment=C
inline constexpr char kErase[] = "/v1/erase";    // POST {"index","path"|"commitment","reason"}
inline constexpr char kHealthz[] = "/healthz";
inline constexpr char kReadyz[] = "/readyz";
inline constexpr char kMetrics[] = "/metrics";
// The console (docs/console.md): /ui redirects to /ui/; files under
// /ui/assets/; every other /ui/ path is the page itself (its deep links).
inline constexpr char kUi[] = "/ui";
inline constexpr char kUiRoot[] = "/ui/";
inline constexpr char kUiAssetsPrefix[] = "/ui/assets/";

}  // namespace annals::api::paths

#endif  // ANNALS_API_PATHS_H_
