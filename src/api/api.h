// Api: the HTTP handlers. Routes a request by path (see paths.h) to the
// ledger's read path, proofs and ingest. Stateless apart from metrics;
// thread-safe. Does not own the ledger.
#ifndef ANNALS_API_API_H_
#define ANNALS_API_API_H_

#include "api/http.h"
#include "common/metrics.h"
#include "ingest/ingestor.h"
#include "ledger/ledger.h"

namespace annals::api {

class Api {
 public:
  Api(ledger::Ledger* ledger, ingest::Ingestor* ingestor, Metrics* metrics)
      : ledger_(ledger), ingestor_(ingestor), metrics_(*metrics) {}
  void Handle(HttpRequest&& req, Responder respond);

 private:
  HttpResponse Checkpoint();
  HttpResponse Tile(std::string_view rel);
  HttpResponse Entry(std::string_view index);
  HttpResponse InclusionProof(const Target& t);
  HttpResponse ConsistencyProof(const Target& t);
  void IngestEvents(HttpRequest&& req, Responder respond);
  void IngestK8sAudit(HttpRequest&& req, Responder respond);
  // Submits items whose payloads point into *body; answers once durable.
  void SubmitAndRespond(std::shared_ptr<std::string> body, std::string source,
                        std::vector<ingest::IngestItem> items, Responder respond);
  HttpResponse MetricsPage();

  ledger::Ledger* ledger_;
  ingest::Ingestor* ingestor_;
  Metrics& metrics_;
};

}  // namespace annals::api

#endif  // ANNALS_API_API_H_
