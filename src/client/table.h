// Aligned text tables for the CLI and the kubectl plugin, and the history
// table both print. Pure, thread-safe.
#ifndef ANNALS_CLIENT_TABLE_H_
#define ANNALS_CLIENT_TABLE_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace annals::client {

// Columns padded to their widest cell, two spaces apart, header first.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// The history answer (/v1/history) as a table, oldest first; a NAMESPACE
// column when it was asked across namespaces; one sentence when it is empty.
std::string FormatHistory(const nlohmann::json& history);
// The pod-by-IP answer (/v1/pods/by-ip/) as a table, a row per pod (with a
// CLUSTER column when pods of clusters answer): the pod, its
// controlling owner, node, Services, and the interval it held the IP.
std::string FormatWhois(const nlohmann::json& whois);
// One pod of a whois answer as FormatWhois's row (without CLUSTER).
std::vector<std::string> WhoisRow(const nlohmann::json& whois);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

}  // namespace annals::client

#endif  // ANNALS_CLIENT_TABLE_H_
