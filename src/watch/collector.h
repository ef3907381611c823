// Collector: keeps the ledger in step with the Kubernetes API server by
// list/watch (`annals serve --watch`, `annals collect --url`). For each
// configured resource one thread lists, then watches from the list's
// resourceVersion with bookmarks, and appends every ADDED/MODIFIED/DELETED
// event as a "k8s.watch" entry whose payload is the object exactly as the
// API server sent it. A dropped connection resumes from the last
// resourceVersion; 410 Gone (or an ERROR "too old resource version")
// relists, appends a relist marker and only the differences between what
// the ledger last knew and the list (deletions while away are marked
// observed at relist); errors back off exponentially. A malformed frame is
// logged and counted, the good frames before it are appended, nothing of
// it is, and the watch restarts. What was appended is remembered durably
// (WatchState) so a restart neither repeats nor loses events; a frame
// re-delivered after a crash has the same dedup key and bytes and is
// stored once.
//
// Thread-safe Start/Stop. Owns its threads; does not own the client, the
// sink or the metrics.
#ifndef ANNALS_WATCH_COLLECTOR_H_
#define ANNALS_WATCH_COLLECTOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "ingest/ingestor.h"
#include "ingest/k8s_watch.h"
#include "client/http_client.h"
#include "kube/kube_client.h"

namespace annals::watch {

// A resource to watch, by group/version/resource.
struct ResourceSpec {
  std::string group, version, resource;
  // "/api/v1/pods" or "/apis/apps/v1/deployments" (all namespaces).
  std::string Path() const;
  // kubectl's name: "pods", "deployments.apps".
  std::string Name() const;
};
// "pods", "deployments" (the built-in table) or "group/version/resource"
// ("cilium.io/v2/ciliumendpoints"; "v1/pods" for the core group).
StatusOr<ResourceSpec> ParseResourceSpec(std::string_view s);
// pods, services, endpointslices, nodes, namespaces, replicasets,
// deployments, statefulsets, daemonsets, jobs, cronjobs, serviceaccounts,
// roles, rolebindings, clusterroles, clusterrolebindings, networkpolicies.
std::vector<ResourceSpec> DefaultResources();
// A comma-separated list; empty = the defaults.
StatusOr<std::vector<ResourceSpec>> ParseResourceList(std::string_view list);

// Where records go. Append returns once all of them are durable (or fails,
// and then none of them may be assumed stored).
class WatchSink {
 public:
  using Done = std::function<void(Status)>;
  virtual ~WatchSink() = default;
  virtual Status Append(const std::vector<ingest::WatchRecord>& records) = 0;
  // The same, answering through `done` (on any thread) so that the caller
  // can hand on the next records while these become durable; the records'
  // bytes must live until then. Appends are stored in the order they are
  // made. By default, Append then done.
  virtual void AppendAsync(const std::vector<ingest::WatchRecord>& records, Done done) {
    done(Append(records));
  }
};

// Into this process's ledger.
class IngestorSink : public WatchSink {
 public:
  // cluster: what the records are filed under (serve --cluster; "" none).
  explicit IngestorSink(ingest::Ingestor* ingestor, std::string cluster = "")
      : ingestor_(ingestor), cluster_(std::move(cluster)) {}
  Status Append(const std::vector<ingest::WatchRecord>& records) override;
  void AppendAsync(const std::vector<ingest::WatchRecord>& records, Done done) override;

 private:
  ingest::Ingestor* ingestor_;
  const std::string cluster_;
};

// To a remote ledger: POST /v1/ingest/k8s-watch (JSON lines). Retries 429
// and 503 (the ledger's backpressure) with backoff; other errors fail.
class RemoteSink : public WatchSink {
 public:
  // auth: how to reach a secured ledger (client_options.h).
  // cluster: asked for with ?cluster= (a credential bound to another
  // cluster is refused; docs/sources.md "Clusters"). "" = none.
  explicit RemoteSink(std::string url, client::ClientAuth auth = {}, std::string cluster = "");
  ~RemoteSink() override;
  Status Append(const std::vector<ingest::WatchRecord>& records) override;

 private:
  std::string url_;
  client::ClientAuth auth_;
  std::string path_;  // the ingest path, with ?cluster= when one is named
  std::mutex mu_;  // one request at a time on the kept-alive connection
  std::unique_ptr<client::HttpClient> http_;
};

struct CollectorOptions {
  std::vector<ResourceSpec> resources;
  std::string state_dir;  // one <resource>.state per resource
  std::chrono::seconds watch_timeout{300};  // timeoutSeconds of each watch
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{30000};
  size_t list_page = 500;             // limit= of each list page
  size_t batch_records = 4096;        // records per append during a relist
  size_t max_frame = 16u << 20;       // longest watch frame accepted
};

// The collector's flags, shared by `annals serve --watch` and `annals collect`.
struct WatchFlags {
  bool enabled = false;  // serve only: --watch
  std::string kubeconfig, context, resources;
  bool in_cluster = false;
  std::string cluster;  // collect only: --cluster, the name its records are filed under
  int watch_timeout_s = 300;
  size_t list_page = 500;
};

// The API server's client: --kubeconfig, else in-cluster (--in-cluster or
// $KUBERNETES_SERVICE_HOST), else $KUBECONFIG or ~/.kube/config.
StatusOr<std::unique_ptr<kube::KubeClient>> MakeKubeClient(const WatchFlags& f);
// InvalidArgument for a bad resource list, timeout or page size.
StatusOr<CollectorOptions> MakeCollectorOptions(const WatchFlags& f, const std::string& state_dir);

class Collector {
 public:
  Collector(kube::KubeClient* kube, WatchSink* sink, Metrics* metrics, CollectorOptions options);
  ~Collector();
  // Opens each resource's state and starts its thread.
  Status Start();
  void Stop();

 private:
  struct Resource;
  void Run(Resource* r);
  // Lists the resource and appends the differences from what was known.
  Status Relist(Resource* r, const std::string& reason);
  // One attempt; *expired when the list's continue token expired.
  Status RelistOnce(Resource* r, const std::string& reason, bool* expired);
  // One watch request; returns when it ends. *relist set on 410.
  Status WatchOnce(Resource* r, bool* relist);
  // Records in the state a batch of watch records made durable, and the
  // stream's resourceVersion after them. Takes the records' heads.
  Status RecordBatch(Resource* r, std::vector<ingest::WatchRecord>* records, const std::string& rv);
  // Sleeps the backoff unless stopped; returns false when stopping.
  bool Backoff(Resource* r);

  kube::KubeClient* kube_;
  WatchSink* sink_;
  Metrics* metrics_;
  CollectorOptions options_;
  std::vector<std::unique_ptr<Resource>> resources_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> open_watches_{0};
  std::mutex mu_;  // for the backoff sleeps
  std::condition_variable cv_;
};

}  // namespace annals::watch

#endif  // ANNALS_WATCH_COLLECTOR_H_
