#include "ingest/k8s_watch.h"

#include <simdjson.h>

#include "json/json_members.h"
#include "json/json_parse.h"
#include "json/json_scan.h"
#include "json/json_write.h"

namespace annals::ingest {

using json_util::StringMember;

namespace {

StatusOr<ObjectHead> HeadFromDom(simdjson::dom::element obj, std::string_view what) {
  if (!obj.is_object()) return InvalidArgumentError(std::string(what) + " is not a JSON object");
  ObjectHead h;
  h.kind = StringMember(obj, "kind");
  h.api_version = StringMember(obj, "apiVersion");
  simdjson::dom::element md;
  if (obj["metadata"].get(md) != simdjson::SUCCESS || !md.is_object())
    return InvalidArgumentError(std::string(what) + " has no metadata object");
  h.uid = StringMember(md, "uid");
  h.name = StringMember(md, "name");
  h.namespace_ = StringMember(md, "namespace");
  h.resource_version = StringMember(md, "resourceVersion");
  return h;
}

// An object version must say which object (uid) and which version (rv).
Status CheckVersioned(const ObjectHead& h, std::string_view what) {
  if (h.uid.empty()) return InvalidArgumentError(std::string(what) + " has no metadata.uid");
  if (h.resource_version.empty())
    return InvalidArgumentError(std::string(what) + " has no metadata.resourceVersion");
  return OkStatus();
}

}  // namespace

std::string_view WatchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded: return "ADDED";
    case WatchEventType::kModified: return "MODIFIED";
    case WatchEventType::kDeleted: return "DELETED";
    case WatchEventType::kBookmark: return "BOOKMARK";
    case WatchEventType::kError: return "ERROR";
  }
  return "?";
}

std::string_view WatchRecordTypeName(WatchRecord::Type t) {
  switch (t) {
    case WatchRecord::kAdded: return "ADDED";
    case WatchRecord::kModified: return "MODIFIED";
    case WatchRecord::kDeleted: return "DELETED";
    case WatchRecord::kRelist: return "RELIST";
  }
  return "?";
}

StatusOr<ObjectHead> ReadObjectHead(std::string_view object) {
  simdjson::dom::element doc;
  auto err = json_util::JsonParser().parse(object.data(), object.size()).get(doc);
  if (err) return InvalidArgumentError("object: " + json_util::JsonErrorMessage(err));
  RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, "object"));
  return HeadFromDom(doc, "object");
}

StatusOr<WatchFrame> ParseWatchFrame(std::string_view line, bool padded) {
  simdjson::dom::element doc;
  auto err = json_util::JsonParser().parse(line.data(), line.size(), !padded).get(doc);
  if (err) return InvalidArgumentError("watch frame: " + json_util::JsonErrorMessage(err));
  if (!doc.is_object()) return InvalidArgumentError("watch frame: not a JSON object");
  RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, "watch frame"));
  std::string_view type;
  if (doc["type"].get_string().get(type) != simdjson::SUCCESS)
    return InvalidArgumentError("watch frame: no \"type\" string");
  WatchFrame f;
  if (type == "ADDED") f.type = WatchEventType::kAdded;
  else if (type == "MODIFIED") f.type = WatchEventType::kModified;
  else if (type == "DELETED") f.type = WatchEventType::kDeleted;
  else if (type == "BOOKMARK") f.type = WatchEventType::kBookmark;
  else if (type == "ERROR") f.type = WatchEventType::kError;
  else return InvalidArgumentError("watch frame: unknown type \"" + std::string(type.substr(0, 32)) + "\"");
  simdjson::dom::element obj;
  if (doc["object"].get(obj) != simdjson::SUCCESS || !obj.is_object())
    return InvalidArgumentError("watch frame: no \"object\" object");
  ASSIGN_OR_RETURN(f.head, HeadFromDom(obj, "watch frame object"));
  if (f.type == WatchEventType::kError) {
    int64_t code = 0;
    if (obj["code"].get_int64().get(code) != simdjson::SUCCESS) code = 0;
    f.error_code = static_cast<int>(code);
    f.error_reason = StringMember(obj, "reason");
    f.error_message = StringMember(obj, "message");
  } else if (f.type == WatchEventType::kBookmark) {
    if (f.head.resource_version.empty())
      return InvalidArgumentError("watch frame: BOOKMARK without metadata.resourceVersion");
  } else {
    RETURN_IF_ERROR(CheckVersioned(f.head, "watch frame object"));
  }
  // The raw bytes of the object, exactly as sent (the frame is valid JSON).
  f.object = json_util::RawMemberValue(line, "object");
  if (f.object.empty()) return InvalidArgumentError("watch frame: \"object\" could not be located");
  return f;
}

bool LineSplitter::Feed(std::string_view bytes) {
  buf_.append(bytes);
  size_t last_nl = buf_.rfind('\n');
  size_t tail = last_nl == std::string::npos ? buf_.size() : buf_.size() - last_nl - 1;
  return tail <= max_line_;
}

std::vector<std::string_view> LineSplitter::Lines() const {
  std::vector<std::string_view> out;
  std::string_view rest(buf_);
  size_t nl;
  while ((nl = rest.find('\n')) != std::string_view::npos) {
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t a = line.find_first_not_of(" \t\r");
    if (a == std::string_view::npos) continue;
    out.push_back(line.substr(a, line.find_last_not_of(" \t\r") - a + 1));
  }
  return out;
}

std::string LineSplitter::TakeLines(std::string spare) {
  spare.clear();
  const size_t last_nl = buf_.rfind('\n');
  if (last_nl == std::string::npos) return spare;
  spare.append(buf_, last_nl + 1, std::string::npos);  // the unfinished line
  buf_.resize(last_nl + 1);
  std::swap(buf_, spare);
  return spare;
}

void LineSplitter::Consume() {
  size_t last_nl = buf_.rfind('\n');
  if (last_nl != std::string::npos) buf_.erase(0, last_nl + 1);
}

std::string WatchKey(const WatchRecord& r) {
  const bool relist = r.type == WatchRecord::kRelist;
  const bool gone = r.type == WatchRecord::kDeleted && r.observed == "relist";
  std::string k;
  k.reserve(32 + r.group.size() + r.resource.size() + r.head.uid.size() + r.head.resource_version.size());
  k += relist ? "watch-relist:" : "watch:";
  k += r.group;
  k += '/';
  k += r.resource;
  if (!relist) {
    k += ':';
    k += r.head.uid;
  }
  k += ':';
  k += r.head.resource_version;
  if (gone) k += ":gone";
  return k;
}

namespace {

std::string WatchMetaWithKey(const WatchRecord& r, std::string_view source, std::string_view rt,
                             std::string_view key) {
  std::string m;
  m.reserve(256 + key.size() + r.head.name.size() + r.head.namespace_.size());
  m += R"({"v":1,"src":)";
  json_util::AppendJsonString(&m, source);
  m += R"(,"rt":)";
  json_util::AppendJsonString(&m, rt);
  m += r.type == WatchRecord::kRelist ? R"(,"ct":"application/json","type":"k8s.watch.relist","key":)"
                                      : R"(,"ct":"application/json","type":"k8s.watch","key":)";
  json_util::AppendJsonString(&m, key);
  m += R"(,"watch":{)";
  auto field = [&m](std::string_view name, std::string_view value, bool optional = false) {
    json_util::AppendJsonMember(&m, name, value, optional);
  };
  field("event", WatchRecordTypeName(r.type));
  field("group", r.group);
  field("version", r.version);
  field("resource", r.resource);
  field("kind", r.kind);
  field("rv", r.head.resource_version);
  if (r.type != WatchRecord::kRelist) {
    field("uid", r.head.uid);
    field("namespace", r.head.namespace_);
    field("name", r.head.name);
  }
  field("observed", r.observed, true);
  m += "}}";
  return m;
}

}  // namespace

std::string WatchMeta(const WatchRecord& r, std::string_view source, std::string_view rt) {
  return WatchMetaWithKey(r, source, rt, WatchKey(r));
}

IngestItem WatchItem(const WatchRecord& r, std::string_view source, std::string_view rt) {
  std::string key = WatchKey(r);
  std::string meta = WatchMetaWithKey(r, source, rt, key);
  return IngestItem{std::move(meta), r.object, std::move(key)};
}

std::string WatchRecordLine(const WatchRecord& r) {
  std::string s = R"({"type":)";
  json_util::AppendJsonString(&s, WatchRecordTypeName(r.type));
  s += R"(,"group":)";
  json_util::AppendJsonString(&s, r.group);
  s += R"(,"version":)";
  json_util::AppendJsonString(&s, r.version);
  s += R"(,"resource":)";
  json_util::AppendJsonString(&s, r.resource);
  s += R"(,"kind":)";
  json_util::AppendJsonString(&s, r.kind);
  if (!r.observed.empty()) {
    s += R"(,"observed":)";
    json_util::AppendJsonString(&s, r.observed);
  }
  s += R"(,"object":)";
  s += r.object;
  s += "}";
  return s;
}

StatusOr<WatchRecord> ParseWatchRecordLine(std::string_view line, std::string_view what) {
  const std::string w(what);
  simdjson::dom::element doc;
  auto err = json_util::JsonParser().parse(line.data(), line.size()).get(doc);
  if (err) return InvalidArgumentError(w + ": " + json_util::JsonErrorMessage(err));
  if (!doc.is_object()) return InvalidArgumentError(w + ": not a JSON object");
  RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, w));
  WatchRecord r;
  std::string_view type;
  if (doc["type"].get_string().get(type) != simdjson::SUCCESS)
    return InvalidArgumentError(w + ": no \"type\" string");
  if (type == "ADDED") r.type = WatchRecord::kAdded;
  else if (type == "MODIFIED") r.type = WatchRecord::kModified;
  else if (type == "DELETED") r.type = WatchRecord::kDeleted;
  else if (type == "RELIST") r.type = WatchRecord::kRelist;
  else return InvalidArgumentError(w + ": type must be ADDED, MODIFIED, DELETED or RELIST");
  r.group = StringMember(doc, "group");
  r.version = StringMember(doc, "version");
  r.resource = StringMember(doc, "resource");
  r.kind = StringMember(doc, "kind");
  r.observed = StringMember(doc, "observed");
  if (r.resource.empty() || r.version.empty())
    return InvalidArgumentError(w + ": resource and version are required");
  for (const std::string* s : {&r.group, &r.version, &r.resource})
    if (s->find_first_of(":/ \t\"\\") != std::string::npos || s->size() > 253)
      return InvalidArgumentError(w + ": bad group, version or resource name");
  if (!r.observed.empty() && r.observed != "relist")
    return InvalidArgumentError(w + ": observed must be \"relist\" when present");
  simdjson::dom::element obj;
  if (doc["object"].get(obj) != simdjson::SUCCESS || !obj.is_object())
    return InvalidArgumentError(w + ": no \"object\" object");
  if (r.type == WatchRecord::kRelist) {
    r.head.resource_version = StringMember(obj, "resourceVersion");
    if (r.head.resource_version.empty())
      return InvalidArgumentError(w + ": RELIST object needs a resourceVersion");
  } else {
    ASSIGN_OR_RETURN(r.head, HeadFromDom(obj, w + " object"));
    RETURN_IF_ERROR(CheckVersioned(r.head, w + " object"));
  }
  r.object = json_util::RawMemberValue(line, "object");
  if (r.object.empty()) return InvalidArgumentError(w + ": \"object\" could not be located");
  return r;
}

}  // namespace annals::ingest
