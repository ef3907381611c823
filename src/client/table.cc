#include "client/table.h"

#include <algorithm>

namespace annals::client {

using nlohmann::json;

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) w[i] = header[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < w.size(); ++i) {
      std::string c = i < cells.size() ? cells[i] : "";
      l += c;
      if (i + 1 < w.size()) l += std::string(w[i] - c.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l + "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string FormatHistory(const json& h) {
  const json events = h.value("events", json::array());
  if (events.empty()) {
    // An empty table would read as "nothing happened": say what was asked
    // and what is left out.
    std::string what = h.value("kind", "") + "/" + h.value("name", "");
    std::string where = h.value("namespace", "").empty() ? " in any namespace" : " in namespace " + h.value("namespace", "");
    return "No changes to " + what + where + " in the ledger (reads are left out: --verbs get,list,watch shows them).\n";
  }
  // Asked without a namespace: the answer may span several.
  const bool all_namespaces = h.value("namespace", "").empty();
  // Asked without a cluster of an annals holding several: rows name theirs.
  const bool clusters = !h.contains("cluster") && std::any_of(events.begin(), events.end(), [](const json& e) {
    return e.contains("cluster");
  });
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : events) {
    std::string what = e.value("resource", "");
    if (!e.value("subresource", "").empty()) what += "/" + e.value("subresource", "");
    std::string name = e.value("name", "");
    std::string user = e.contains("user") ? e["user"].value("username", "") : "";
    if (e.contains("impersonated_user") && e["impersonated_user"].is_object())
      user += " (as " + e["impersonated_user"].value("username", "") + ")";
    std::string ips;
    for (const auto& ip : e.value("source_ips", json::array()))
      if (ip.is_string()) ips += (ips.empty() ? "" : ",") + ip.get<std::string>();
    std::string changed;
    if (e.contains("changes")) {
      size_t n = 0;
      for (const auto& c : e["changes"]) {
        if (n++ == 3) {
          changed += ",...";
          break;
        }
        changed += (changed.empty() ? "" : ",") + c.value("path", "");
      }
      if (changed.empty()) changed = "-";
    }
    // A watch collector's row: it saw the change, not who made it.
    if (user.empty() && e.value("source", "") == "k8s-watch") user = "(watch)";
    if (ips.empty()) ips = "-";
    rows.push_back({e.value("time", ""), e.value("verb", ""), what, name, user, ips,
                    std::to_string(e.value("code", 0)), changed, std::to_string(e.value("index", 0))});
    if (all_namespaces) rows.back().insert(rows.back().begin() + 3, e.value("namespace", ""));
    if (clusters) rows.back().insert(rows.back().begin() + 1, e.value("cluster", ""));
  }
  std::vector<std::string> header = {"TIME", "VERB", "RESOURCE", "NAME", "USER", "SOURCE", "CODE", "CHANGED", "INDEX"};
  if (all_namespaces) header.insert(header.begin() + 3, "NAMESPACE");
  if (clusters) header.insert(header.begin() + 1, "CLUSTER");
  return FormatTable(header, rows);
}

std::string FormatWhois(const json& w) {
  // One row per pod: several when pods of several clusters held the address.
  std::vector<json> answers = {w};
  for (const auto& o : w.value("other_clusters", json::array())) answers.push_back(o);
  const bool clusters = w.contains("cluster");
  std::vector<std::vector<std::string>> rows;
  for (const json& a : answers) {
    rows.push_back(WhoisRow(a));
    if (clusters) rows.back().insert(rows.back().begin() + 1, a.value("cluster", ""));
  }
  std::vector<std::string> header = {"IP", "NAMESPACE", "POD", "OWNER", "NODE", "SERVICES", "FROM", "TO", "INDEX"};
  if (clusters) header.insert(header.begin() + 1, "CLUSTER");
  return FormatTable(header, rows);
}

std::vector<std::string> WhoisRow(const json& w) {
  const json pod = w.value("pod", json::object());
  std::string owner = "-";
  if (w.contains("owners") && w["owners"].is_array() && !w["owners"].empty()) {
    owner.clear();
    for (const auto& o : w["owners"])
      owner += (owner.empty() ? "" : ",") + o.value("kind", "") + "/" + o.value("name", "");
  }
  std::string services;
  for (const auto& s : w.value("services", json::array()))
    services += (services.empty() ? "" : ",") + s.value("name", "");
  const json iv = w.value("interval", json::object());
  auto text = [](const json& j, const char* k) {
    if (!j.contains(k) || j[k].is_null() || (j[k].is_string() && j[k].get<std::string>().empty())) return std::string("-");
    return j[k].is_string() ? j[k].get<std::string>() : j[k].dump();
  };
  return {w.value("ip", ""), pod.value("namespace", ""), pod.value("name", ""), owner,
          text(pod, "node"), services.empty() ? "-" : services, text(iv, "from"), text(iv, "to"),
          text(w, "version_index")};
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace annals::client
