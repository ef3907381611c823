// Api: the HTTP handlers. Routes a request by path (see paths.h) to the
// ledger's read path, proofs and ingest. Stateless apart from metrics;
// thread-safe. Does not own the ledger.
#ifndef ANNALS_API_API_H_
#define ANNALS_API_API_H_

#include "api/http.h"
#include "common/metrics.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"
#include "state/questions.h"
#include "stream/change_feed.h"

namespace annals::api {

class Api {
 public:
  // questions may be null (no projections): the question endpoints 503.
  Api(ledger::Ledger* ledger, ingest::Ingestor* ingestor, Metrics* metrics,
      const state::Questions* questions = nullptr)
      : ledger_(ledger), ingestor_(ingestor), metrics_(*metrics), questions_(questions) {}
  void Handle(HttpRequest&& req, Responder respond);
  // Enables /v1/watch (and the feed's lines in /metrics). Not owned.
  void SetChangeFeed(stream::ChangeFeed* feed) { feed_ = feed; }

 private:
  HttpResponse Checkpoint();
  HttpResponse Tile(std::string_view rel);
  HttpResponse Entry(std::string_view index);
  HttpResponse InclusionProof(const Target& t);
  HttpResponse ConsistencyProof(const Target& t);
  void IngestEvents(HttpRequest&& req, Responder respond);
  void IngestK8sAudit(HttpRequest&& req, Responder respond);
  void IngestK8sWatch(HttpRequest&& req, Responder respond);
  // Submits items whose payloads point into *body; answers once durable.
  void SubmitAndRespond(std::shared_ptr<std::string> body, std::string source,
                        std::vector<ingest::IngestItem> items, Responder respond);
  HttpResponse MetricsPage();
  HttpResponse StateAt(const Target& t);
  HttpResponse PodByIp(std::string_view ip, const Target& t);
  HttpResponse History(const Target& t);
  HttpResponse Events(const Target& t);
  HttpResponse EnrichFlows(const HttpRequest& req);
  void Watch(const HttpRequest& req, const Target& t, Responder respond);

  ledger::Ledger* ledger_;
  ingest::Ingestor* ingestor_;
  Metrics& metrics_;
  const state::Questions* questions_;
  stream::ChangeFeed* feed_ = nullptr;
};

}  // namespace annals::api

#endif  // ANNALS_API_API_H_
