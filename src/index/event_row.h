// The rows of the event index (search, group-by and history): one per
// audit event, as the state projection reads them off the entry's meta
// (docs/format/event-index.md). Pure encoding, no RocksDB: the projection
// fills an EventBatch, the EventIndex stores it, the questions decode rows.
//
// Thread-compatible.
#ifndef ANNALS_INDEX_EVENT_ROW_H_
#define ANNALS_INDEX_EVENT_ROW_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time_util.h"

namespace annals::index {

// One audit event as search and group-by see it, in the normalized view
// every source shares (docs/sources.md): a Kubernetes audit event's verb,
// user, resource... and a cloud audit record's operation (verb), actor
// (user), service (resource), target (name), role (as). Views into the
// encoded row (DecodeEventRow) or the caller's strings (EventBatch::Add).
struct EventRowView {
  uint64_t index = 0;
  Micros time = 0;
  int32_t code = 0;
  std::string_view verb, user, resource, subresource, ns, name, ip, ua, stage;
  std::string_view as;  // impersonatedUser.username (a cloud record: the role acted as), "" if none
  std::string_view cloud;    // "aws", "gcp", "azure"; "" for Kubernetes
  std::string_view account;  // cloud account, project or subscription
  std::string_view cluster;  // the cluster the event is about, "" if not named
  std::string_view result;   // a cloud record's "success"/"failure"/...; "" for Kubernetes (see code)
};

// Row value: varint(zigzag time), varint(zigzag code), then verb, user,
// resource, subresource, namespace, name, source IP, user agent, stage, the
// impersonated user, cloud, account, cluster and result, each
// varint(length) + bytes. The index is the row's key.
void EncodeEventRow(const EventRowView& row, std::string* out);
// InvalidArgument (DataLoss-worthy to the caller) on truncated or
// over-long input; views point into `value`.
Status DecodeEventRow(uint64_t index, std::string_view value, EventRowView* row);

// What a stretch of the log adds to the event index: its rows (in index
// order) and the (resource, namespace, name) each is filed under for
// history (a Namespace's under its cluster-scoped name; an object created
// with generateName also under its real name).
class EventBatch {
 public:
  void Add(const EventRowView& row);
  void AddName(std::string_view resource, std::string_view ns, std::string_view name, uint64_t index);
  void clear();
  bool empty() const { return rows_.empty() && names_.empty(); }
  size_t rows() const { return rows_.size(); }

  struct Row {
    uint64_t index;
    Micros time;
    size_t at, size;  // the encoded value in arena()
  };
  struct Name {
    uint64_t index;
    size_t at, size;  // the name key (NameKey) in arena()
  };
  const std::vector<Row>& row_list() const { return rows_; }
  const std::vector<Name>& name_list() const { return names_; }
  // The decoded fields group-by pre-aggregates count (kept beside the
  // encoding so the index does not decode what was just encoded).
  struct Facets {
    std::string_view user, as, verb, resource, ns, ip, ua, cloud, account;
    int32_t code;
  };
  Facets facets(size_t i) const;
  std::string_view arena(size_t at, size_t size) const { return std::string_view(arena_).substr(at, size); }

 private:
  std::vector<Row> rows_;
  std::vector<Name> names_;
  std::string arena_;
};

// LEB128 varints (7 bits a byte, low first). GetVarint consumes one from
// *in; false if it is cut short or over 64 bits.
void PutVarint(std::string* out, uint64_t v);
bool GetVarint(std::string_view* in, uint64_t* v);

// The key prefix of (resource, namespace, name) in the names table:
// each part varint(length) + bytes.
std::string NameKey(std::string_view resource, std::string_view ns, std::string_view name);
// The same triple in the order (resource, name, namespace), so that the
// namespaces holding a name are one prefix scan: NameFirstPrefix(resource,
// name) then the namespace. NameFirstKey is "" for bytes not a NameKey;
// NamespaceAfterPrefix reads the namespace that follows the prefix.
std::string NameFirstPrefix(std::string_view resource, std::string_view name);
std::string NameFirstKey(std::string_view name_key);
bool NamespaceAfterPrefix(std::string_view rest, std::string* ns);

}  // namespace annals::index

#endif  // ANNALS_INDEX_EVENT_ROW_H_
