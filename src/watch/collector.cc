#include "watch/collector.h"
#include "common/log.h"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <random>

#include "api/paths.h"
#include "client/http_client.h"
#include "client/table.h"
#include "common/file_util.h"
#include "common/time_util.h"
#include "ingest/json_lines.h"
#include "json/json_parse.h"
#include "json/json_scan.h"
#include "json/json_write.h"
#include "kube/resources.h"
#include "watch/watch_state.h"

namespace annals::watch {

using ingest::WatchRecord;

namespace {

bool NameOk(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  return true;
}

std::string ApiVersion(const ResourceSpec& s) {
  return s.group.empty() ? s.version : s.group + "/" + s.version;
}

void Log(const std::string& resource, const std::string& msg) {
  log::Info("watch %s: %s", resource.c_str(), msg.c_str());
}

}  // namespace

std::string ResourceSpec::Path() const {
  return group.empty() ? "/api/" + version + "/" + resource
                       : "/apis/" + group + "/" + version + "/" + resource;
}

std::string ResourceSpec::Name() const { return group.empty() ? resource : resource + "." + group; }

StatusOr<ResourceSpec> ParseResourceSpec(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) {
    if (const kube::ResourceInfo* b = kube::FindResource(s); b && b->resource == s)
      return ResourceSpec{std::string(b->group), std::string(b->version), std::string(b->resource)};
    return InvalidArgumentError("unknown resource \"" + std::string(s) +
                                "\"; name custom resources as group/version/resource");
  }
  ResourceSpec r;
  auto last = s.rfind('/');
  r.resource = std::string(s.substr(last + 1));
  std::string_view gv = s.substr(0, last);
  auto mid = gv.rfind('/');
  if (mid == std::string_view::npos) {
    r.version = std::string(gv);  // "v1/pods": the core group
  } else {
    r.group = std::string(gv.substr(0, mid));
    r.version = std::string(gv.substr(mid + 1));
  }
  if (!NameOk(r.resource) || !NameOk(r.version) || (!r.group.empty() && !NameOk(r.group)))
    return InvalidArgumentError("bad resource \"" + std::string(s) + "\" (want group/version/resource)");
  return r;
}

std::vector<ResourceSpec> DefaultResources() {
  std::vector<ResourceSpec> out;
  for (const auto& b : kube::KnownResources())
    if (b.watched_by_default)
      out.push_back({std::string(b.group), std::string(b.version), std::string(b.resource)});
  return out;
}

StatusOr<std::vector<ResourceSpec>> ParseResourceList(std::string_view list) {
  if (list.empty()) return DefaultResources();
  std::vector<ResourceSpec> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view one = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (one.empty()) continue;
    ASSIGN_OR_RETURN(ResourceSpec r, ParseResourceSpec(one));
    for (const auto& o : out)
      if (o.Name() == r.Name()) return InvalidArgumentError("resource listed twice: " + r.Name());
    out.push_back(std::move(r));
  }
  if (out.empty()) return InvalidArgumentError("no resources to watch");
  return out;
}

namespace {

std::vector<ingest::IngestItem> WatchItems(const std::vector<WatchRecord>& records, const std::string& cluster) {
  const std::string now = ingest::NowRfc3339();
  std::vector<ingest::IngestItem> items;
  items.reserve(records.size());
  for (const auto& r : records) {
    items.push_back(ingest::WatchItem(r, "k8s-watch", now));
    (void)ingest::BindCluster(cluster, &items.back());  // WatchItem's metadata: cannot fail
  }
  return items;
}

}  // namespace

Status IngestorSink::Append(const std::vector<WatchRecord>& records) {
  return ingestor_->SubmitAndWait("k8s-watch", WatchItems(records, cluster_)).status();
}

void IngestorSink::AppendAsync(const std::vector<WatchRecord>& records, Done done) {
  ingestor_->Submit("k8s-watch", WatchItems(records, cluster_),
                    [done = std::move(done)](StatusOr<ingest::IngestResult> r) { done(r.status()); });
}

RemoteSink::RemoteSink(std::string url, client::ClientAuth auth, std::string cluster)
    : url_(std::move(url)),
      auth_(std::move(auth)),
      path_(std::string(api::paths::kIngestK8sWatch) + (cluster.empty() ? "" : "?cluster=" + client::UrlEncode(cluster))) {}
RemoteSink::~RemoteSink() = default;

Status RemoteSink::Append(const std::vector<WatchRecord>& records) {
  std::string body;
  for (const auto& r : records) {
    body += ingest::WatchRecordLine(r);
    body += '\n';
  }
  std::lock_guard lock(mu_);
  std::chrono::milliseconds wait(100);
  for (int attempt = 0;; ++attempt) {
    if (!http_) {
      ASSIGN_OR_RETURN(http_, client::HttpClient::Create(url_, auth_));
    }
    auto res = http_->Post(path_, body, "application/x-ndjson");
    if (!res.ok()) {
      http_.reset();
      return res.status();
    }
    if (res->status == 200) return OkStatus();
    if ((res->status == 429 || res->status == 503) && attempt < 8) {
      std::this_thread::sleep_for(wait);
      wait = std::min(wait * 2, std::chrono::milliseconds(5000));
      continue;
    }
    return UnavailableError("ledger answered " + std::to_string(res->status) + ": " +
                            res->body.substr(0, 300));
  }
}

struct Collector::Resource {
  ResourceSpec spec;
  std::string name;
  WatchState state;
  std::chrono::milliseconds backoff{0};
  std::mt19937 rng{std::random_device{}()};
};

Collector::Collector(kube::KubeClient* kube, WatchSink* sink, Metrics* metrics, CollectorOptions options)
    : kube_(kube), sink_(sink), metrics_(metrics), options_(std::move(options)) {}

StatusOr<std::unique_ptr<kube::KubeClient>> MakeKubeClient(const WatchFlags& f) {
  StatusOr<kube::KubeConfig> cfg = FailedPreconditionError("no API server configured");
  if (!f.kubeconfig.empty()) {
    cfg = kube::LoadKubeconfig(f.kubeconfig, f.context);
  } else if (f.in_cluster || std::getenv("KUBERNETES_SERVICE_HOST")) {
    cfg = kube::InClusterConfig();
  } else {
    std::string path;
    if (const char* k = std::getenv("KUBECONFIG"); k && *k) path = std::string(k).substr(0, std::string(k).find(':'));
    else if (const char* h = std::getenv("HOME")) path = std::string(h) + "/.kube/config";
    if (path.empty() || !FileExists(path))
      return FailedPreconditionError(
          "no API server to watch: give --kubeconfig FILE or --in-cluster (or set $KUBECONFIG)");
    cfg = kube::LoadKubeconfig(path, f.context);
  }
  if (!cfg.ok()) return cfg.status();
  return kube::KubeClient::Create(std::move(*cfg));
}

StatusOr<CollectorOptions> MakeCollectorOptions(const WatchFlags& f, const std::string& state_dir) {
  CollectorOptions o;
  ASSIGN_OR_RETURN(o.resources, ParseResourceList(f.resources));
  o.state_dir = state_dir;
  if (f.watch_timeout_s <= 0) return InvalidArgumentError("--watch-timeout must be positive");
  o.watch_timeout = std::chrono::seconds(f.watch_timeout_s);
  if (f.list_page == 0) return InvalidArgumentError("--watch-list-page must be positive");
  o.list_page = f.list_page;
  return o;
}

Collector::~Collector() { Stop(); }

Status Collector::Start() {
  RETURN_IF_ERROR(MakeDirs(options_.state_dir));
  for (const auto& spec : options_.resources) {
    auto r = std::make_unique<Resource>();
    r->spec = spec;
    r->name = spec.Name();
    auto st = WatchState::Open(options_.state_dir + "/" + r->name + ".state");
    if (!st.ok()) return st.status();
    r->state = std::move(*st);
    resources_.push_back(std::move(r));
  }
  metrics_->Set("annals_watch_open", 0);
  for (auto& r : resources_) threads_.emplace_back([this, p = r.get()] { Run(p); });
  return OkStatus();
}

void Collector::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_.exchange(true) && threads_.empty()) return;
  }
  cv_.notify_all();
  kube_->Abort();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

bool Collector::Backoff(Resource* r) {
  r->backoff = r->backoff.count() == 0 ? options_.backoff_min
                                       : std::min(r->backoff * 2, options_.backoff_max);
  // Full jitter in [backoff/2, backoff]: many collectors do not reconnect in step.
  std::uniform_int_distribution<int64_t> d(r->backoff.count() / 2, r->backoff.count());
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(d(r->rng)), [this] { return stop_.load(); });
  return !stop_;
}

void Collector::Run(Resource* r) {
  bool relist = r->state.rv().empty();
  std::string reason = "initial list";
  while (!stop_) {
    if (relist) {
      Status s = Relist(r, reason);
      if (!s.ok()) {
        if (stop_) break;
        Log(r->name, "list failed: " + s.message());
        metrics_->Add("annals_watch_errors_total", "resource", r->name);
        if (!Backoff(r)) break;
        continue;
      }
      relist = false;
    }
    bool need_relist = false;
    Status s = WatchOnce(r, &need_relist);
    if (stop_) break;
    if (need_relist) {
      relist = true;
      reason = "resourceVersion " + r->state.rv() + " expired (410 Gone)";
      Log(r->name, reason + ": relisting");
      continue;
    }
    if (!s.ok()) {
      Log(r->name, s.message());
      metrics_->Add("annals_watch_reconnects_total", "resource", r->name);
      if (!Backoff(r)) break;
    }
  }
}

Status Collector::RecordBatch(Resource* r, std::vector<WatchRecord>* records, const std::string& rv) {
  if (!records->empty()) metrics_->Add("annals_watch_events_total", "resource", r->name, records->size());
  std::vector<WatchState::Change> changes;
  changes.reserve(records->size());
  for (auto& rec : *records) {
    if (rec.type == WatchRecord::kRelist) continue;
    WatchState::Change c;
    c.uid = std::move(rec.head.uid);
    c.gone = rec.type == WatchRecord::kDeleted;
    c.known = {std::move(rec.head.resource_version), std::move(rec.head.namespace_), std::move(rec.head.name)};
    changes.push_back(std::move(c));
  }
  return r->state.Record(std::move(changes), rv);
}

namespace {

// Frames read from a watch, waiting for their append. Owns the objects'
// bytes (the records' views point into `bytes`).
struct PendingBatch {
  std::string bytes;
  std::vector<WatchRecord> records;
  std::string rv;  // the stream's resourceVersion after these frames
  Micros received = 0;
};

}  // namespace

Status Collector::WatchOnce(Resource* r, bool* relist) {
  const std::string path = r->spec.Path() + "?watch=1&allowWatchBookmarks=true&resourceVersion=" +
                           client::UrlEncode(r->state.rv()) +
                           "&timeoutSeconds=" + std::to_string(options_.watch_timeout.count());
  ingest::LineSplitter splitter(options_.max_frame);
  Status failure;  // why the stream was given up, if it was (reader side)
  bool counted_open = false;

  // Reading and parsing overlap with appending: this thread reads and
  // parses the next frames while an appender thread hands the batches
  // before them to the sink. Up to kInFlight batches are on their way to
  // disk at once (the next one's admission overlaps the previous one's
  // write and fdatasync); batches are appended, and their resourceVersion
  // recorded once durable, strictly in order, and nothing is recorded
  // after a failed batch. At most kMaxPending more wait, so memory stays
  // bounded and a slow disk slows the reads (TCP backpressure on the API
  // server). Each hand-off is whatever one read returned, so batches grow
  // with the load.
  constexpr size_t kMaxPending = 2;
  constexpr size_t kInFlight = 2;
  // The state belongs to the appender from here on; the reader keeps its
  // own copies of what it needs.
  std::string rv = r->state.rv();  // after the frames handed on so far
  std::string kind = r->state.kind();
  std::mutex mu;
  std::condition_variable cv;
  std::deque<PendingBatch> pending;
  std::vector<std::string> spares;  // buffers of settled batches, for the splitter
  bool reading_done = false;
  Status append_failure;  // guarded by mu
  std::thread appender([&] {
    struct Outcome {
      bool done = false;  // guarded by mu
      Status status;
    };
    struct Sent {
      PendingBatch batch;
      std::shared_ptr<Outcome> outcome;
    };
    std::deque<Sent> sent;  // handed to the sink, oldest first
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] {
        return (!sent.empty() && sent.front().outcome->done) || (!pending.empty() && sent.size() < kInFlight) ||
               (reading_done && pending.empty() && sent.empty());
      });
      if (!sent.empty() && sent.front().outcome->done) {
        Sent s = std::move(sent.front());
        sent.pop_front();
        Status st = s.outcome->status;
        const bool record = append_failure.ok() && st.ok();
        lock.unlock();
        if (record) st = RecordBatch(r, &s.batch.records, s.batch.rv);
        lock.lock();
        if (spares.size() < kMaxPending + kInFlight) {
          s.batch.bytes.clear();
          spares.push_back(std::move(s.batch.bytes));
        }
        if (!append_failure.ok()) continue;
        if (!st.ok()) {
          append_failure = UnavailableError("append failed: " + st.message());
          pending.clear();
          reading_done = true;  // nothing after a failed batch may be appended
        } else {
          metrics_->SetDouble("annals_watch_lag_seconds", static_cast<double>(NowMicros() - s.batch.received) / 1e6);
          r->backoff = std::chrono::milliseconds(0);  // progress: the next error starts small
        }
        cv.notify_all();
        continue;
      }
      if (pending.empty()) return;  // read to the end, all settled
      sent.push_back({std::move(pending.front()), std::make_shared<Outcome>()});
      pending.pop_front();
      cv.notify_all();
      Sent& s = sent.back();  // a deque keeps references across push_back
      lock.unlock();
      if (!s.batch.records.empty() && !s.batch.records.front().head.kind.empty())
        (void)r->state.SetKind(s.batch.records.front().head.kind, s.batch.records.front().head.api_version);
      if (s.batch.records.empty()) {  // only a newer resourceVersion (bookmarks)
        lock.lock();
        s.outcome->done = true;
        continue;
      }
      sink_->AppendAsync(s.batch.records, [&mu, &cv, outcome = s.outcome](Status st) {
        std::lock_guard done_lock(mu);
        outcome->done = true;
        outcome->status = std::move(st);
        cv.notify_all();
      });
      lock.lock();
    }
  });

  auto on_data = [&](std::string_view bytes) -> bool {
    if (!counted_open) {
      counted_open = true;
      metrics_->Set("annals_watch_open", static_cast<uint64_t>(++open_watches_));
    }
    const Micros received = NowMicros();
    if (!splitter.Feed(bytes)) {
      metrics_->Add("annals_watch_malformed_frames_total", "resource", r->name);
      failure = InvalidArgumentError("watch frame longer than " + std::to_string(options_.max_frame) +
                                     " bytes; restarting the watch");
      return false;
    }
    PendingBatch batch;
    batch.received = received;
    const std::string before = rv;
    bool stop_stream = false;
    // A frame followed by simdjson's padding of the buffer's own bytes
    // (all but the last few) is parsed where it lies.
    const std::string_view buffered(splitter.data(), splitter.pending_bytes());
    for (std::string_view line : splitter.Lines()) {
      const size_t after = static_cast<size_t>(buffered.data() + buffered.size() - (line.data() + line.size()));
      auto f = ingest::ParseWatchFrame(line, after >= simdjson::SIMDJSON_PADDING);
      if (!f.ok()) {
        metrics_->Add("annals_watch_malformed_frames_total", "resource", r->name);
        failure = InvalidArgumentError("malformed watch frame (" + f.status().message() +
                                       "): " + std::string(line.substr(0, 120)) +
                                       "; restarting the watch from resourceVersion " + rv);
        stop_stream = true;
        break;
      }
      if (f->type == ingest::WatchEventType::kError) {
        if (f->error_code == 410 || f->error_reason == "Expired" || f->error_reason == "Gone") {
          *relist = true;
        } else {
          metrics_->Add("annals_watch_errors_total", "resource", r->name);
          failure = UnavailableError("watch ERROR " + std::to_string(f->error_code) + " " +
                                     f->error_reason + ": " + f->error_message.substr(0, 300));
        }
        stop_stream = true;
        break;
      }
      rv = f->head.resource_version;
      if (f->type == ingest::WatchEventType::kBookmark) continue;
      WatchRecord rec;
      rec.type = f->type == ingest::WatchEventType::kAdded      ? WatchRecord::kAdded
                 : f->type == ingest::WatchEventType::kModified ? WatchRecord::kModified
                                                                 : WatchRecord::kDeleted;
      rec.group = r->spec.group;
      rec.version = r->spec.version;
      rec.resource = r->spec.resource;
      if (!f->head.kind.empty()) kind = f->head.kind;
      rec.kind = kind;
      rec.head = std::move(f->head);
      rec.object = f->object;  // into the splitter's buffer, handed on below
      batch.records.push_back(std::move(rec));
    }
    // The good frames before a bad one are appended; the bad one is not.
    if (!batch.records.empty() || rv != before) {
      // The batch takes the splitter's buffer, frames and all (no copy);
      // the splitter goes on in a buffer an earlier batch gave back.
      std::string spare;
      {
        std::lock_guard lock(mu);
        if (!spares.empty()) {
          spare = std::move(spares.back());
          spares.pop_back();
        }
      }
      const char* base = splitter.data();
      batch.bytes = splitter.TakeLines(std::move(spare));
      for (auto& rec : batch.records)
        rec.object = std::string_view(batch.bytes.data() + (rec.object.data() - base), rec.object.size());
      batch.rv = rv;
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return pending.size() < kMaxPending || !append_failure.ok(); });
      if (!append_failure.ok()) return false;
      pending.push_back(std::move(batch));
      cv.notify_all();
    }
    splitter.Consume();
    if (stop_stream || stop_) return false;
    std::lock_guard lock(mu);
    return append_failure.ok();
  };
  std::string error_body;
  auto status = kube_->Stream(path, options_.watch_timeout + std::chrono::seconds(30), on_data,
                              &error_body);
  {
    // Whatever was read is appended before this watch ends (or the first
    // failed append drops the rest, to be read again from its rv).
    std::lock_guard lock(mu);
    reading_done = true;
    cv.notify_all();
  }
  appender.join();
  if (counted_open) metrics_->Set("annals_watch_open", static_cast<uint64_t>(--open_watches_));
  if (!append_failure.ok()) return append_failure;
  if (*relist) return OkStatus();
  if (!failure.ok()) return failure;
  if (!status.ok()) return status.status();
  if (*status == 410) {
    *relist = true;
    return OkStatus();
  }
  if (*status != 200) {
    metrics_->Add("annals_watch_errors_total", "resource", r->name);
    return UnavailableError("watch answered " + kube::StatusSummary(*status, error_body));
  }
  // The server ended the watch (timeoutSeconds): a bare stream end
  // mid-frame loses nothing, the next watch resumes from the last rv.
  return OkStatus();
}

Status Collector::Relist(Resource* r, const std::string& reason) {
  metrics_->Add("annals_watch_relists_total", "resource", r->name);
  // Pages of one consistent list, each appended as it comes (memory stays
  // at one page and the known set): first the relist marker, then what
  // changed, then tombstones for what is gone. A 410 on a continue token
  // (the snapshot expired) starts over; what was appended already comes
  // back with the same keys and bytes and is stored once.
  for (int attempt = 0;; ++attempt) {
    bool expired = false;
    Status s = RelistOnce(r, reason, &expired);
    if (!s.ok() || !expired) return s;
    if (attempt >= 3) return UnavailableError("list continue token kept expiring");
  }
}

Status Collector::RelistOnce(Resource* r, const std::string& reason, bool* expired) {
  std::string list_rv, kind, cont;
  std::deque<std::string> owned;  // bytes of the marker and tombstones
  std::unordered_map<std::string, WatchState::Known> now_known;
  size_t added = 0, modified = 0, deleted = 0, items = 0;
  const auto& known = r->state.known();
  auto base = [&](WatchRecord::Type t) {
    WatchRecord rec;
    rec.type = t;
    rec.group = r->spec.group;
    rec.version = r->spec.version;
    rec.resource = r->spec.resource;
    rec.kind = kind;
    rec.observed = "relist";
    return rec;
  };
  auto append = [&](const std::vector<WatchRecord>& records) -> Status {
    for (size_t i = 0; i < records.size(); i += options_.batch_records) {
      std::vector<WatchRecord> batch(
          records.begin() + static_cast<long>(i),
          records.begin() + static_cast<long>(std::min(records.size(), i + options_.batch_records)));
      RETURN_IF_ERROR(sink_->Append(batch));
      metrics_->Add("annals_watch_events_total", "resource", r->name, batch.size());
    }
    return OkStatus();
  };
  do {
    std::string path = r->spec.Path() + "?limit=" + std::to_string(options_.list_page);
    if (!cont.empty()) path += "&continue=" + client::UrlEncode(cont);
    ASSIGN_OR_RETURN(auto res, kube_->Get(path));
    if (stop_) return UnavailableError("stopping");
    if (res.status == 410 && !cont.empty()) {
      *expired = true;
      return OkStatus();
    }
    if (res.status != 200) return UnavailableError("list answered " + kube::StatusSummary(res.status, res.body));
    simdjson::dom::element doc;
    auto err = json_util::JsonParser().parse(res.body.data(), res.body.size()).get(doc);
    if (err) return InvalidArgumentError("list body: " + json_util::JsonErrorMessage(err));
    RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, "list body"));
    std::string_view sv;
    simdjson::dom::element md;
    if (doc["metadata"].get(md) != simdjson::SUCCESS) return InvalidArgumentError("list has no metadata");
    cont.clear();
    if (md["continue"].get_string().get(sv) == simdjson::SUCCESS) cont = std::string(sv);
    std::vector<WatchRecord> records;
    if (list_rv.empty()) {  // the first page: the snapshot's version and kind
      if (md["resourceVersion"].get_string().get(sv) != simdjson::SUCCESS || sv.empty())
        return InvalidArgumentError("list has no metadata.resourceVersion");
      list_rv = std::string(sv);
      if (doc["kind"].get_string().get(sv) == simdjson::SUCCESS) kind = std::string(sv);
      if (kind.ends_with("List")) kind.resize(kind.size() - 4);
      if (!kind.empty()) RETURN_IF_ERROR(r->state.SetKind(kind, ApiVersion(r->spec)));
      if (kind.empty()) kind = r->state.kind();
      WatchRecord m = base(WatchRecord::kRelist);
      m.observed.clear();
      m.head.resource_version = list_rv;
      std::string j = R"({"resource":)";
      json_util::AppendJsonString(&j, r->name);
      j += R"(,"resourceVersion":)";
      json_util::AppendJsonString(&j, list_rv);
      j += R"(,"reason":)";
      json_util::AppendJsonString(&j, reason);
      j += "}";
      owned.push_back(std::move(j));
      m.object = owned.back();
      records.push_back(std::move(m));
    }
    auto raws = json_util::RawArrayMember(res.body, "items");
    if (!raws.ok() && raws.status().code() != StatusCode::kNotFound) return raws.status();
    for (std::string_view item : raws.ok() ? *raws : std::vector<std::string_view>{}) {
      if (item == "null") continue;
      ++items;
      auto head = ingest::ReadObjectHead(item);
      if (!head.ok() || head->uid.empty() || head->resource_version.empty()) {
        metrics_->Add("annals_watch_malformed_frames_total", "resource", r->name);
        Log(r->name, "list item without metadata.uid/resourceVersion skipped");
        continue;
      }
      now_known[head->uid] = {head->resource_version, head->namespace_, head->name};
      auto k = known.find(head->uid);
      if (k != known.end() && k->second.rv == head->resource_version) continue;
      WatchRecord rec = base(k == known.end() ? WatchRecord::kAdded : WatchRecord::kModified);
      (k == known.end() ? added : modified)++;
      rec.head = std::move(*head);
      rec.object = item;
      records.push_back(std::move(rec));
    }
    RETURN_IF_ERROR(append(records));
  } while (!cont.empty());

  std::vector<WatchRecord> records;
  for (const auto& [uid, k] : known) {
    if (now_known.count(uid)) continue;
    // Deleted while we were away: its final state is unknown, so the entry
    // is a tombstone naming the object and the last version we knew.
    WatchRecord rec = base(WatchRecord::kDeleted);
    rec.head.uid = uid;
    rec.head.name = k.name;
    rec.head.namespace_ = k.ns;
    rec.head.resource_version = k.rv;
    rec.head.kind = kind;
    std::string t = R"({"kind":)";
    json_util::AppendJsonString(&t, kind);
    t += R"(,"apiVersion":)";
    json_util::AppendJsonString(&t, ApiVersion(r->spec));
    t += R"(,"metadata":{"name":)";
    json_util::AppendJsonString(&t, k.name);
    if (!k.ns.empty()) {
      t += R"(,"namespace":)";
      json_util::AppendJsonString(&t, k.ns);
    }
    t += R"(,"uid":)";
    json_util::AppendJsonString(&t, uid);
    t += R"(,"resourceVersion":)";
    json_util::AppendJsonString(&t, k.rv);
    t += "}}";
    owned.push_back(std::move(t));
    rec.object = owned.back();
    records.push_back(std::move(rec));
    ++deleted;
  }
  RETURN_IF_ERROR(append(records));
  RETURN_IF_ERROR(r->state.Reset(std::move(now_known), list_rv));
  Log(r->name, "listed " + std::to_string(items) + " at resourceVersion " + list_rv + " (" + reason +
                   "): " + std::to_string(added) + " added, " + std::to_string(modified) +
                   " modified, " + std::to_string(deleted) + " deleted while away");
  return OkStatus();
}

}  // namespace annals::watch
