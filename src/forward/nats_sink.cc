#include "forward/nats_sink.h"

#include <nats/nats.h>

#include <atomic>

#include "forward/forward_format.h"

namespace annals::forward {

struct NatsSink::State {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  std::atomic<int> failed{0};
};

namespace {

void OnPubError(jsCtx*, jsPubAckErr* pae, void* closure) {
  static_cast<std::atomic<int>*>(closure)->fetch_add(1);
  (void)pae;  // the message is destroyed by the library; the batch is sent again
}

Status NatsError(const std::string& what, natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string m = what + ": " + natsStatus_GetText(s);
  if (jerr) m += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
  return UnavailableError(m);
}

}  // namespace

std::string SubjectToken(std::string_view s) {
  if (s.empty()) return "_";
  std::string out(s);
  for (char& c : out)
    if (c == '.' || c == '*' || c == '>' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f) c = '_';
  return out;
}

std::string NatsLogName(std::string_view origin) {
  std::string out(origin);
  for (char& c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      c = '_';
  return out.empty() ? "_" : out;
}

std::string NatsSubject(std::string_view log, const stream::Change& c) {
  return kNatsSubjectPrefix + std::string(log) + "." + SubjectToken(c.resource.empty() ? c.type : c.resource) + "." +
         SubjectToken(c.namespace_) + "." + SubjectToken(c.name);
}

NatsSink::NatsSink(std::string url, std::string origin)
    : url_(std::move(url)), log_(NatsLogName(origin)), st_(new State) {}

NatsSink::~NatsSink() {
  Disconnect();
  delete st_;
}

void NatsSink::Disconnect() {
  if (st_->js) jsCtx_Destroy(st_->js);
  st_->js = nullptr;
  if (st_->nc) {
    natsConnection_Close(st_->nc);
    natsConnection_Destroy(st_->nc);
  }
  st_->nc = nullptr;
}

Status NatsSink::Connect() {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url_.c_str());
  // Reconnection is ours: a failed batch is sent again on a new connection.
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 2000);
  if (s == NATS_OK) s = natsConnection_Connect(&st_->nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    Disconnect();
    return NatsError("connect to " + url_, s);
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.ErrHandler = OnPubError;
  jo.PublishAsync.ErrHandlerClosure = &st_->failed;
  jo.PublishAsync.MaxPending = 4096;
  s = natsConnection_JetStream(&st_->js, st_->nc, &jo);
  if (s != NATS_OK) {
    Disconnect();
    return NatsError("JetStream context", s);
  }
  const std::string stream = kNatsStreamPrefix + log_;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_GetStreamInfo(&si, st_->js, stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) {
    const std::string subjects = kNatsSubjectPrefix + log_ + ".>";
    const char* subj[] = {subjects.c_str()};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream.c_str();
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    s = js_AddStream(&si, st_->js, &cfg, nullptr, &jerr);
  }
  if (si) jsStreamInfo_Destroy(si);
  if (s != NATS_OK) {
    Disconnect();
    return NatsError("JetStream stream " + stream, s, jerr);
  }
  return OkStatus();
}

Status NatsSink::Send(const std::vector<std::shared_ptr<const stream::Change>>& changes, uint64_t) {
  if (!st_->nc) RETURN_IF_ERROR(Connect());
  st_->failed = 0;
  natsStatus s = NATS_OK;
  for (const auto& c : changes) {
    natsMsg* m = nullptr;
    const std::string subject = NatsSubject(log_, *c);
    std::string_view data = c->data();
    s = natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(m, kNatsMsgIdHeader, std::to_string(c->index).c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(st_->js, &m, nullptr);
    if (m) natsMsg_Destroy(m);  // still ours only if the publish failed
    if (s != NATS_OK) break;
  }
  if (s == NATS_OK) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    s = js_PublishAsyncComplete(st_->js, &po);
  }
  if (s != NATS_OK || st_->failed.load() != 0) {
    Disconnect();
    return s != NATS_OK ? NatsError("publish to " + url_, s)
                        : UnavailableError("JetStream refused " + std::to_string(st_->failed.load()) +
                                           " messages");
  }
  return OkStatus();
}

}  // namespace annals::forward
