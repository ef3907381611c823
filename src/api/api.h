// Api: the HTTP handlers. Routes a request by path (see paths.h) to the
// ledger's read path, proofs and ingest. Stateless apart from metrics;
// thread-safe. Does not own the ledger.
#ifndef ANNALS_API_API_H_
#define ANNALS_API_API_H_

#include "api/http.h"
#include "api/metrics.h"
#include "ledger/ledger.h"

namespace annals::api {

class Api {
 public:
  explicit Api(ledger::Ledger* ledger) : ledger_(ledger) {}
  void Handle(HttpRequest&& req, Responder respond);
  Metrics& metrics() { return metrics_; }

 private:
  HttpResponse Checkpoint();
  HttpResponse Tile(std::string_view rel);
  HttpResponse Entry(std::string_view index);
  HttpResponse InclusionProof(const Target& t);
  HttpResponse ConsistencyProof(const Target& t);
  void IngestEvents(HttpRequest&& req, Responder respond);
  // Appends entries and answers once durable.
  void AppendAndRespond(std::vector<std::string> entries, std::string source, Responder respond);
  HttpResponse MetricsPage();

  ledger::Ledger* ledger_;
  Metrics metrics_;
};

}  // namespace annals::api

#endif  // ANNALS_API_API_H_
