#include "kube/yaml.h"

#include <yaml.h>

namespace annals::kube {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 32;
// A document's aliases may name one node many times; the budget bounds the
// expanded value so an alias bomb ("billion laughs") is an error, not an
// exhausted heap.
constexpr size_t kMaxNodes = 1 << 20;

struct Reader {
  yaml_document_t* doc;
  size_t nodes = 0;
  bool too_deep = false, too_big = false;

  json Node(yaml_node_t* n, int depth) {
    if (!n) return nullptr;
    if (depth > kMaxDepth) {
      too_deep = true;
      return nullptr;
    }
    if (++nodes > kMaxNodes) {
      too_big = true;
      return nullptr;
    }
    switch (n->type) {
      case YAML_SCALAR_NODE:
        return std::string(reinterpret_cast<char*>(n->data.scalar.value), n->data.scalar.length);
      case YAML_SEQUENCE_NODE: {
        json a = json::array();
        for (auto* it = n->data.sequence.items.start; it < n->data.sequence.items.top && !Failed(); ++it)
          a.push_back(Node(yaml_document_get_node(doc, *it), depth + 1));
        return a;
      }
      case YAML_MAPPING_NODE: {
        json o = json::object();
        for (auto* p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top && !Failed(); ++p) {
          json k = Node(yaml_document_get_node(doc, p->key), depth + 1);
          if (!k.is_string()) continue;
          o[k.get<std::string>()] = Node(yaml_document_get_node(doc, p->value), depth + 1);
        }
        return o;
      }
      default:
        return nullptr;
    }
  }
  bool Failed() const { return too_deep || too_big; }
};

}  // namespace

StatusOr<json> YamlToJson(std::string_view text, const std::string& what) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return InternalError("cannot initialise the YAML parser");
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    std::string err = what + ": invalid YAML (" + (parser.problem ? parser.problem : "?") +
                      " at line " + std::to_string(parser.problem_mark.line + 1) + ")";
    yaml_parser_delete(&parser);
    return InvalidArgumentError(err);
  }
  Reader r{&doc};
  json j = r.Node(yaml_document_get_root_node(&doc), 0);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (r.too_deep)
    return InvalidArgumentError(what + ": nested more than " + std::to_string(kMaxDepth) + " levels deep");
  if (r.too_big)
    return InvalidArgumentError(what + ": expands to more than " + std::to_string(kMaxNodes) +
                                " values (aliases?)");
  return j;
}

}  // namespace annals::kube
