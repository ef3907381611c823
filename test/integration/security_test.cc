// Authentication and authorization end to end (docs/security.md): the real
// binary serving HTTPS with client certificates and bearer tokens, driven
// by curl as the kube-apiserver's webhook and kubectl users would, with
// certificates made here with OpenSSL: a CA, the server's certificate,
// client certificates for an ingester, a namespace-limited reader, a full
// reader and an admin; one from another CA and one expired. ServiceAccount
// tokens are vouched for by test/fake_apiserver's TokenReviews
// (--token-review with a kubeconfig for it).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <atomic>
#include <cstdio>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "checkpoint/note.h"
#include "common/bytes.h"
#include "common/sha256.h"
#include "merkle/merkle.h"
#include "testutil/fake_apiserver.h"
#include "testutil/log_client.h"
#include "testutil/server_process.h"
#include "testutil/test_macros.h"

namespace annals {
namespace {

using nlohmann::json;
using testutil::FakeApiServer;
using testutil::ServeOptions;
using testutil::ServerProcess;
using testutil::TempDir;

// ---------------------------------------------------------------------------
// Certificates (OpenSSL API).

struct KeyCert {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

void WritePem(const std::string& dir, const std::string& name, const KeyCert& kc) {
  FILE* f = std::fopen((dir + "/" + name + ".crt").c_str(), "w");
  PEM_write_X509(f, kc.cert);
  std::fclose(f);
  f = std::fopen((dir + "/" + name + ".key").c_str(), "w");
  PEM_write_PrivateKey(f, kc.key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A P-256 key and a certificate for CN/O, signed by `issuer` (self-signed
// when null), valid from now+from_s to now+to_s.
KeyCert Issue(const std::string& cn, const std::vector<std::string>& orgs, const KeyCert* issuer,
              bool ca, long from_s = -3600, long to_s = 86400, const char* san = nullptr) {
  static long serial = 1;
  KeyCert kc;
  kc.key = EVP_EC_gen("P-256");
  kc.cert = X509_new();
  X509_set_version(kc.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(kc.cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(kc.cert), from_s);
  X509_gmtime_adj(X509_getm_notAfter(kc.cert), to_s);
  X509_set_pubkey(kc.cert, kc.key);
  X509_NAME* name = X509_get_subject_name(kc.cert);
  for (const auto& o : orgs)
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert : kc.cert;
  X509_set_issuer_name(kc.cert, X509_get_subject_name(issuer_cert));
  AddExt(kc.cert, issuer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  AddExt(kc.cert, issuer_cert, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  if (!ca) AddExt(kc.cert, issuer_cert, NID_ext_key_usage, san ? "serverAuth" : "clientAuth");
  AddExt(kc.cert, issuer_cert, NID_subject_key_identifier, "hash");
  if (san) AddExt(kc.cert, issuer_cert, NID_subject_alt_name, san);
  X509_sign(kc.cert, issuer ? issuer->key : kc.key, EVP_sha256());
  return kc;
}

// ---------------------------------------------------------------------------
// curl, as the apiserver's webhook and users run it.

struct CurlResult {
  int exit_code = -1;
  int status = 0;
  std::string body;
};

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CurlResult Curl(const std::vector<std::string>& args) {
  std::string cmd = "curl -sS --max-time 20 -o - -w '\\n%{http_code}'";
  for (const auto& a : args) cmd += " " + ShellQuote(a);
  cmd += " 2>/dev/null";
  CurlResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[65536];
  size_t n;
  std::string out;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  size_t nl = out.rfind('\n');
  if (nl != std::string::npos) {
    r.status = std::atoi(out.c_str() + nl + 1);
    r.body = out.substr(0, nl);
  }
  return r;
}

// ---------------------------------------------------------------------------
// Data: pods in two namespaces, from a real corpus pod.

json CorpusPod() {
  std::ifstream in(testutil::CorpusDir() + "/k8s-objects/k9s/po.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

json PodEvent(int serial, const std::string& verb, const std::string& ns, const std::string& name,
              const std::string& ip, int second) {
  json pod = CorpusPod();
  pod["metadata"]["namespace"] = ns;
  pod["metadata"]["name"] = name;
  pod["metadata"]["uid"] = "7a1b2c3d-0000-4000-8000-" + std::to_string(100000000000 + name.size() * 1000 + name.back());
  pod["metadata"]["labels"] = {{"app", name}};
  pod["metadata"].erase("ownerReferences");
  pod["metadata"]["resourceVersion"] = std::to_string(1000 + serial);
  pod["status"]["phase"] = ip.empty() ? "Pending" : "Running";
  pod["status"].erase("podIPs");
  if (ip.empty()) pod["status"].erase("podIP");
  else {
    pod["status"]["podIP"] = ip;
    pod["status"]["podIPs"] = json::array({{{"ip", ip}}});
  }
  char ts[64];
  std::snprintf(ts, sizeof ts, "2024-03-01T10:00:%02d.000000Z", second);
  char id[64];
  std::snprintf(id, sizeof id, "5e1d2c3b-%04x-4a5b-8c7d-00000000%04x", serial, serial);
  json ref = {{"resource", "pods"}, {"namespace", ns}, {"name", name}, {"apiVersion", "v1"}};
  if (verb == "patch") ref["subresource"] = "status";
  return {{"kind", "Event"}, {"apiVersion", "audit.k8s.io/v1"}, {"level", "RequestResponse"},
          {"auditID", id}, {"stage", "ResponseComplete"},
          {"requestURI", "/api/v1/namespaces/" + ns + "/pods/" + name}, {"verb", verb},
          {"user", {{"username", "system:serviceaccount:" + ns + ":deployer"}, {"groups", {"system:authenticated"}}}},
          {"sourceIPs", {"172.18.0.3"}}, {"userAgent", "kubectl/v1.29.2"}, {"objectRef", ref},
          {"responseStatus", {{"metadata", json::object()}, {"code", verb == "create" ? 201 : 200}}},
          {"requestReceivedTimestamp", ts}, {"stageTimestamp", ts}, {"responseObject", pod}};
}

// A port that was free a moment ago on 127.0.0.1 (ServerProcess keeps only
// the url line, not "tcp: PORT").
uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

// Sends `text` over TLS to the TCP connector with a client certificate
// (who = "" for none) and closes. False if the connection failed.
bool SendTls(uint16_t port, const std::string& dir, const std::string& who, const std::string& text) {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(dir + "/ca.crt");
  if (!who.empty()) {
    ctx.use_certificate_chain_file(dir + "/" + who + ".crt");
    ctx.use_private_key_file(dir + "/" + who + ".key", net::ssl::context::pem);
  }
  ctx.set_verify_mode(net::ssl::verify_peer);
  net::ssl::stream<net::ip::tcp::socket> s(ioc, ctx);
  boost::system::error_code ec;
  s.lowest_layer().connect({net::ip::make_address("127.0.0.1"), port}, ec);
  if (!ec) s.handshake(net::ssl::stream_base::client, ec);
  if (!ec) net::write(s, net::buffer(text), ec);
  bool ok = !ec;
  // Wait for the server to be done with us (it closes at our shutdown).
  boost::system::error_code ignored;
  s.shutdown(ignored);
  return ok;
}

// One kept-alive HTTPS connection with a client certificate.
class KeptAlive {
 public:
  KeptAlive(uint16_t port, const std::string& dir, const std::string& who)
      : ctx_(boost::asio::ssl::context::tls_client), s_(ioc_, ctx_) {
    ctx_.load_verify_file(dir + "/ca.crt");
    ctx_.use_certificate_chain_file(dir + "/" + who + ".crt");
    ctx_.use_private_key_file(dir + "/" + who + ".key", boost::asio::ssl::context::pem);
    s_.lowest_layer().connect({boost::asio::ip::make_address("127.0.0.1"), port});
    s_.handshake(boost::asio::ssl::stream_base::client);
  }
  int Get(const std::string& target) {
    namespace http = boost::beast::http;
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    boost::system::error_code ec;
    http::write(s_, req, ec);
    if (ec) return 0;
    http::response<http::string_body> res;
    http::read(s_, buf_, res, ec);
    return ec ? 0 : res.result_int();
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> s_;
  boost::beast::flat_buffer buf_;
};

uint16_t PortOf(const std::string& url) {
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

std::string HashHex(std::string_view token) { return HexEncode(HashBytes(Sha256(token))); }

// The ServiceAccounts the fake API server's TokenReviews know, and the
// token annals itself authenticates to it with (its kubeconfig's).
constexpr char kReviewerToken[] = "annals-reviewer-token-5b1e";
constexpr char kTeamAToken[] = "eyJhbGciOiJSUzI1NiJ9.team-a-dashboard.sig";
constexpr char kOpsToken[] = "eyJhbGciOiJSUzI1NiJ9.ops-ingester.sig";

void RegisterServiceAccount(FakeApiServer& kube, const std::string& token, const std::string& ns,
                            const std::string& name, const json& audiences = nullptr) {
  json body = {{"token", token},
               {"username", "system:serviceaccount:" + ns + ":" + name},
               {"groups", {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}};
  if (!audiences.is_null()) body["audiences"] = audiences;
  kube.Control("tokenreview", body);
}

int TokenReviews(FakeApiServer& kube) { return kube.Stats().value("tokenreviews", -1); }

// ---------------------------------------------------------------------------

class Auth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string& d = dir_->path();
    ca_ = Issue("annals-test-ca", {}, nullptr, true);
    KeyCert other_ca = Issue("some-other-ca", {}, nullptr, true);
    WritePem(d, "ca", ca_);
    WritePem(d, "server", Issue("annals", {}, &ca_, false, -3600, 86400, "IP:127.0.0.1,DNS:localhost"));
    WritePem(d, "apiserver", Issue("kube-apiserver", {"annals:ingest"}, &ca_, false));
    WritePem(d, "alice", Issue("alice", {"team-a"}, &ca_, false));
    WritePem(d, "auditor", Issue("auditor", {"auditors"}, &ca_, false));
    WritePem(d, "root", Issue("root", {"system:masters"}, &ca_, false));
    WritePem(d, "ci", Issue("ci-pipeline", {"ci"}, &ca_, false));
    WritePem(d, "collector", Issue("watch-collector", {"collectors"}, &ca_, false));
    WritePem(d, "edge", Issue("edge-forwarder", {"edge-nodes"}, &ca_, false));
    WritePem(d, "mallory", Issue("kube-apiserver", {"system:masters"}, &other_ca, false));
    WritePem(d, "expired", Issue("kube-apiserver", {"system:masters"}, &ca_, false, -7200, -3600));
    std::ofstream(d + "/tokens") << "# sha256 user groups\n" << HashHex("alice-token") << " alice team-a\n"
                                 << HashHex("ro-token") << " bob team-a,team-b\n";
    std::ofstream(d + "/auth.json") << R"({
      "tokens": "tokens",
      "anonymous": ["verify"],
      "groups": {
        "system:masters": ["admin"],
        "annals:ingest": ["ingest"],
        "ci": ["ingest:events"],
        "collectors": ["ingest:k8s-watch"],
        "edge-nodes": {"roles": ["ingest:tcp"], "cluster": "edge-1"},
        "auditors": ["read"],
        "team-a": {"roles": ["read"], "namespaces": ["team-a"]},
        "team-b": {"roles": ["read"], "namespaces": ["team-b"]},
        "system:serviceaccounts:team-a": {"roles": ["read"], "namespaces": ["team-a"]}
      },
      "users": {
        "system:serviceaccount:ops:ingester": ["ingest"]
      }})";
    kube_ = new FakeApiServer(kReviewerToken);
    ASSERT_GT(kube_->port(), 0);
    RegisterServiceAccount(*kube_, kTeamAToken, "team-a", "dashboard");
    RegisterServiceAccount(*kube_, kOpsToken, "ops", "ingester");
    ServeOptions o;
    o.data_dir = dir_->Sub("data");
    o.checkpoint_interval_ms = 50;
    o.extra_args = {"--tls-cert", d + "/server.crt", "--tls-key", d + "/server.key", "--client-ca",
                    d + "/ca.crt", "--auth-config", d + "/auth.json", "--request-timeout", "3",
                    "--tcp-listen", "127.0.0.1:" + std::to_string(tcp_port_ = FreePort()),
                    // Refused requests are written a window at a time: not
                    // within this suite, so that the log sizes it compares
                    // hold (RefusedRequestsAreOnTheRecord runs its own server).
                    "--denied-window", "3600",
                    "--token-review",
                    testutil::WriteFakeKubeconfig(d + "/kubeconfig", kube_->port(),
                                                  std::string("token: ") + kReviewerToken)};
    server_ = new ServerProcess(o);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_EQ(server_->url().substr(0, 8), "https://");

    // Two namespaces' pods, through the webhook as the kube-apiserver posts them.
    json list = {{"kind", "EventList"}, {"apiVersion", "audit.k8s.io/v1"}, {"metadata", json::object()},
                 {"items", {PodEvent(1, "create", "team-a", "web-a", "", 1),
                            PodEvent(2, "patch", "team-a", "web-a", "10.1.0.1", 2),
                            PodEvent(3, "create", "team-b", "web-b", "", 3),
                            PodEvent(4, "patch", "team-b", "web-b", "10.2.0.1", 4)}}};
    std::ofstream(d + "/events.json") << list.dump();
    CurlResult r = As("apiserver", {"-X", "POST", "--data-binary", "@" + d + "/events.json", "-H",
                                    "Content-Type: application/json", Url("/v1/ingest/k8s-audit")});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(json::parse(r.body)["stored"], 4);
    // Wait for the projections.
    for (int i = 0; i < 200; ++i) {
      CurlResult st = As("root", {Url("/v1/state?kind=Pod&namespace=team-b")});
      if (st.status == 200 && json::parse(st.body)["count"] == 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    delete kube_;
    delete dir_;
  }

  static std::string Url(const std::string& path) { return server_->url() + path; }
  static std::string P(const std::string& f) { return dir_->path() + "/" + f; }
  // curl with a client certificate (who = "" for none).
  static CurlResult As(const std::string& who, std::vector<std::string> args) {
    std::vector<std::string> a = {"--cacert", P("ca.crt")};
    if (!who.empty()) a.insert(a.end(), {"--cert", P(who + ".crt"), "--key", P(who + ".key")});
    a.insert(a.end(), args.begin(), args.end());
    return Curl(a);
  }
  static CurlResult Token(const std::string& token, std::vector<std::string> args) {
    std::vector<std::string> a = {"--cacert", P("ca.crt"), "-H", "Authorization: Bearer " + token};
    a.insert(a.end(), args.begin(), args.end());
    return Curl(a);
  }
  static uint64_t LogSize() {
    CurlResult m = As("root", {Url("/metrics")});
    EXPECT_EQ(m.status, 200);
    size_t p = m.body.find("\nannals_log_entries ");
    EXPECT_NE(p, std::string::npos);
    return std::strtoull(m.body.c_str() + p + 20, nullptr, 10);
  }
  // The annals.read entries at or after `from`, decoded, via /v1/entries.
  static std::vector<json> ReadEntries(uint64_t from) {
    std::vector<json> out;
    uint64_t n = LogSize();
    for (uint64_t i = from; i < n; ++i) {
      CurlResult e = As("root", {Url("/v1/entries/" + std::to_string(i))});
      EXPECT_EQ(e.status, 200) << e.body;
      json j = json::parse(e.body);
      if (j["meta"].value("type", "") == "annals.read") out.push_back(j);
    }
    return out;
  }

  static TempDir* dir_;
  static ServerProcess* server_;
  static FakeApiServer* kube_;
  static KeyCert ca_;
  static uint16_t tcp_port_;
};
uint16_t Auth::tcp_port_ = 0;
FakeApiServer* Auth::kube_ = nullptr;
TempDir* Auth::dir_ = nullptr;
ServerProcess* Auth::server_ = nullptr;
KeyCert Auth::ca_;

TEST_F(Auth, NoCertificateIsAnonymousVerifyOnly) {
  EXPECT_EQ(As("", {Url("/log/checkpoint")}).status, 200);  // the public C2SP read path
  CurlResult r = As("", {Url("/v1/events")});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(As("", {Url("/v1/state")}).status, 401);
  EXPECT_EQ(As("", {Url("/metrics")}).status, 401);
  EXPECT_EQ(As("", {Url("/healthz")}).status, 200);
}

TEST_F(Auth, WrongCaAndExpiredCertificatesFailTheHandshake) {
  for (const char* who : {"mallory", "expired"}) {
    CurlResult r = As(who, {Url("/v1/events")});
    EXPECT_NE(r.exit_code, 0) << who;
    EXPECT_EQ(r.status, 0) << who << " got an HTTP answer: " << r.body;
    r = As(who, {"-X", "POST", "--data-binary", "@" + P("events.json"), Url("/v1/ingest/k8s-audit")});
    EXPECT_EQ(r.status, 0) << who;
  }
  // The same CN from the right CA is fine: it is the CA that decides.
  EXPECT_EQ(As("apiserver", {"-X", "POST", "--data-binary", "@" + P("events.json"),
                             Url("/v1/ingest/k8s-audit")}).status, 200);
}

TEST_F(Auth, TlsBelow12IsRefused) {
  CurlResult r = As("root", {"--tlsv1.1", "--tls-max", "1.1", Url("/healthz")});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(As("root", {"--tlsv1.2", "--tls-max", "1.2", Url("/healthz")}).status, 200);
}

TEST_F(Auth, WritesWithoutTheIngestRoleAreRejectedAndTheLogDoesNotGrow) {
  const uint64_t before = LogSize();
  const std::vector<std::string> post = {"-X", "POST", "--data-binary", "@" + P("events.json"),
                                         Url("/v1/ingest/k8s-audit")};
  const std::vector<std::string> post_events = {"-X", "POST", "--data-binary",
                                                R"({"specversion":"1.0","id":"x1","source":"/t","type":"t"})",
                                                Url("/v1/ingest/events")};
  EXPECT_EQ(As("", post).status, 401);
  EXPECT_EQ(As("", post_events).status, 401);
  EXPECT_EQ(Token("not-a-token", post).status, 401);
  EXPECT_EQ(As("alice", post).status, 403);
  EXPECT_EQ(As("alice", post_events).status, 403);
  EXPECT_EQ(As("auditor", post).status, 403);
  EXPECT_EQ(Token("alice-token", post).status, 403);
  EXPECT_EQ(LogSize(), before);
  // The ingester itself may (these are duplicates: stored once, the log stays).
  CurlResult ok = As("apiserver", post);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["duplicates"], 4);
}

TEST_F(Auth, ClientCertificateIsTheUserAndTokensToo) {
  const uint64_t from = LogSize();
  ASSERT_EQ(As("alice", {Url("/v1/events?limit=5")}).status, 200);
  ASSERT_EQ(Token("ro-token", {Url("/v1/events?namespace=team-b")}).status, 200);
  auto reads = ReadEntries(from);
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[0]["event"]["user"], "alice");
  EXPECT_EQ(reads[0]["event"]["groups"], json::array({"team-a"}));
  EXPECT_EQ(reads[0]["event"]["auth"], "tls");
  EXPECT_EQ(reads[1]["event"]["user"], "bob");
  EXPECT_EQ(reads[1]["event"]["auth"], "token");
  EXPECT_EQ(reads[1]["event"]["target"], "/v1/events?namespace=team-b");
}

TEST_F(Auth, TokensFileIsReReadWhenItChanges) {
  EXPECT_EQ(Token("new-token", {Url("/v1/events?limit=1")}).status, 401);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  {
    std::ofstream(P("tokens"), std::ios::app) << HashHex("new-token") << " carol auditors\n";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CurlResult r = Token("new-token", {Url("/v1/events?limit=1")});
  EXPECT_EQ(r.status, 200) << r.body;
}

// A reader limited to team-a, endpoint by endpoint; the full reader sees
// team-b's pod at the same place, so each check could fail.
TEST_F(Auth, NamespaceLimitedReaderSeesNothingOfOtherNamespaces) {
  // state
  json all = json::parse(As("auditor", {Url("/v1/state?kind=Pod")}).body);
  EXPECT_EQ(all["count"], 2);
  CurlResult s = As("alice", {Url("/v1/state?kind=Pod")});
  ASSERT_EQ(s.status, 200) << s.body;
  json a = json::parse(s.body);
  ASSERT_EQ(a["count"], 1);
  EXPECT_EQ(a["objects"][0]["namespace"], "team-a");
  EXPECT_EQ(As("alice", {Url("/v1/state?kind=Pod&namespace=team-b")}).status, 403);
  EXPECT_EQ(As("alice", {Url("/v1/state?kind=Pod&namespace=team-b&proof=true")}).status, 403);
  EXPECT_EQ(As("alice", {Url("/v1/state?kind=Node&namespace=")}).status, 200);  // scoped to team-a
  // a reader of two namespaces must name one
  EXPECT_EQ(Token("ro-token", {Url("/v1/state?kind=Pod")}).status, 403);

  // whois
  const std::string at = "at=2024-03-01T10:00:30Z";
  EXPECT_EQ(As("auditor", {Url("/v1/pods/by-ip/10.2.0.1?" + at)}).status, 200);
  CurlResult w = As("alice", {Url("/v1/pods/by-ip/10.2.0.1?" + at)});
  EXPECT_EQ(w.status, 404) << w.body;
  EXPECT_EQ(w.body.find("web-b"), std::string::npos) << w.body;
  CurlResult wa = As("alice", {Url("/v1/pods/by-ip/10.1.0.1?" + at)});
  ASSERT_EQ(wa.status, 200) << wa.body;
  EXPECT_EQ(json::parse(wa.body)["pod"]["name"], "web-a");
  // nearest intervals do not name the other namespace's pod either
  CurlResult wn = As("alice", {Url("/v1/pods/by-ip/10.2.0.1?at=2024-03-01T10:00:03Z")});
  EXPECT_EQ(wn.body.find("web-b"), std::string::npos) << wn.body;

  // history
  EXPECT_EQ(As("auditor", {Url("/v1/history?kind=Pod&namespace=team-b&name=web-b")}).status, 200);
  EXPECT_EQ(As("alice", {Url("/v1/history?kind=Pod&namespace=team-b&name=web-b")}).status, 403);
  CurlResult h = As("alice", {Url("/v1/history?kind=Pod&namespace=team-a&name=web-a")});
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(json::parse(h.body)["events"].size(), 2u);
  // Scoped to team-a, where no web-b ever was: the same 404 as for a name the
  // ledger never saw, so the answer does not reveal that team-b has one.
  CurlResult h2 = As("alice", {Url("/v1/history?kind=Pod&name=web-b")});
  EXPECT_EQ(h2.status, 404) << h2.body;
  EXPECT_EQ(h2.body.find("team-b"), std::string::npos) << h2.body;
  EXPECT_EQ(As("alice", {Url("/v1/history?kind=Pod&name=never-was")}).status, 404);

  // events, group-by
  json ev_all = json::parse(As("auditor", {Url("/v1/events?resource=pods")}).body);
  EXPECT_GE(ev_all["events"].size(), 4u);
  CurlResult e = As("alice", {Url("/v1/events?resource=pods")});
  ASSERT_EQ(e.status, 200);
  json ev = json::parse(e.body);
  EXPECT_EQ(ev["events"].size(), 2u);
  for (const auto& x : ev["events"]) EXPECT_EQ(x["namespace"], "team-a");
  EXPECT_EQ(As("alice", {Url("/v1/events?namespace=team-b")}).status, 403);
  json g = json::parse(As("alice", {Url("/v1/events?group_by=namespace")}).body);
  ASSERT_EQ(g["groups"].size(), 1u) << g.dump();
  EXPECT_EQ(g["groups"][0]["key"], "team-a");
  CurlResult jl = As("alice", {Url("/v1/events?format=jsonl")});
  EXPECT_EQ(jl.body.find("team-b"), std::string::npos);

  // enrich
  const std::string flow = R"({"time":"2024-03-01T10:00:30Z","src_ip":"10.1.0.1","dst_ip":"10.2.0.1"})";
  json full = json::parse(As("auditor", {"-X", "POST", "--data-binary", flow, Url("/v1/enrich/flows")}).body);
  EXPECT_EQ(full["dst_workload"]["namespace"], "team-b");
  CurlResult en = As("alice", {"-X", "POST", "--data-binary", flow, Url("/v1/enrich/flows")});
  ASSERT_EQ(en.status, 200) << en.body;
  json lim = json::parse(en.body);
  EXPECT_EQ(lim["src_workload"]["pod"], "web-a");
  EXPECT_TRUE(lim["dst_workload"].is_null()) << en.body;
  EXPECT_EQ(en.body.find("team-b"), std::string::npos);

  // watch: the first two seconds of the stream from the log's start
  auto sse = [](const std::string& who, const std::string& q) {
    return As(who, {"-N", "--max-time", "2", Url("/v1/watch?from=0" + q)});
  };
  EXPECT_EQ(sse("alice", "&namespace=team-b").status, 403);
  CurlResult sa = sse("auditor", "&resource=pods");
  EXPECT_NE(sa.body.find("\"team-b\""), std::string::npos) << "a full reader's stream names team-b";
  CurlResult sl = sse("alice", "");
  EXPECT_EQ(sl.status, 200);
  EXPECT_NE(sl.body.find("\"team-a\""), std::string::npos) << sl.body.substr(0, 2000);
  EXPECT_EQ(sl.body.find("team-b"), std::string::npos) << sl.body.substr(0, 2000);
}

TEST_F(Auth, EveryQuestionIsRecordedAndTheRecordIsVerifiable) {
  const uint64_t from = LogSize();
  const std::vector<std::string> asked = {
      "/v1/state?kind=Pod", "/v1/pods/by-ip/10.1.0.1?at=2024-03-01T10:00:30Z",
      "/v1/history?kind=Pod&name=web-a", "/v1/events?resource=pods"};
  for (const auto& q : asked) ASSERT_EQ(As("alice", {Url(q)}).status, 200) << q;
  ASSERT_EQ(As("alice", {"-X", "POST", "--data-binary",
                         R"({"time":"2024-03-01T10:00:30Z","src_ip":"10.1.0.1","dst_ip":"10.9.9.9"})",
                         Url("/v1/enrich/flows")}).status, 200);
  // A question refused for its namespace is recorded too (who tried to look
  // where), with its status and nothing returned; a caller without the read
  // role never gets as far as a question.
  ASSERT_EQ(As("alice", {Url("/v1/events?namespace=team-b")}).status, 403);
  ASSERT_EQ(As("apiserver", {Url("/v1/events")}).status, 403);
  auto reads = ReadEntries(from);
  ASSERT_EQ(reads.size(), asked.size() + 2);
  const std::vector<uint64_t> counts = {1, 1, 2, 2, 1, 0};
  const std::vector<int> statuses = {200, 200, 200, 200, 200, 403};
  for (size_t i = 0; i < reads.size(); ++i) {
    const json& ev = reads[i]["event"];
    EXPECT_EQ(ev["user"], "alice");
    EXPECT_EQ(ev["remote"], "127.0.0.1");
    EXPECT_EQ(ev["count"], counts[i]) << ev.dump();
    EXPECT_EQ(ev["status"], statuses[i]) << ev.dump();
    EXPECT_EQ(ev["target"], i < asked.size() ? asked[i]
                            : i == asked.size() ? "/v1/enrich/flows" : "/v1/events?namespace=team-b");
    EXPECT_EQ(reads[i]["meta"]["src"], "annals");
    EXPECT_EQ(reads[i]["meta"]["read"]["user"], "alice");
  }
  // Verifiable like any entry: inclusion in a signed checkpoint.
  auto verifier = note::Verifier::FromVerifierKey(server_->verifier_key());
  ASSERT_TRUE(verifier.ok());
  const uint64_t last = reads.back()["index"].get<uint64_t>();
  json e;
  for (int i = 0; i < 100; ++i) {
    e = json::parse(As("root", {Url("/v1/entries/" + std::to_string(last))}).body);
    if (!e["inclusion_proof"].is_null()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(e["inclusion_proof"].is_null());
  auto cp = testutil::OpenCheckpoint(e["checkpoint"].get<std::string>(), **verifier);
  ASSERT_TRUE(cp.ok()) << cp.status().message();
  std::vector<Hash> proof;
  for (const auto& h : e["inclusion_proof"]["hashes"]) {
    auto b = Base64Decode(h.get<std::string>());
    ASSERT_TRUE(b && b->size() == 32);
    Hash x;
    std::copy(b->begin(), b->end(), x.begin());
    proof.push_back(x);
  }
  auto raw = Base64Decode(e["entry"].get<std::string>());
  ASSERT_TRUE(raw);
  Status v = merkle::VerifyInclusion(last, cp->cp.size, merkle::HashLeaf(*raw), proof, cp->cp.root);
  EXPECT_TRUE(v.ok()) << v.message();
}

TEST_F(Auth, SighupReloadsTheServerCertificate) {
  // A new CA and server certificate replace the files; after SIGHUP new
  // connections present the new one.
  KeyCert ca2 = Issue("annals-test-ca-2", {}, nullptr, true);
  WritePem(dir_->path(), "ca2", ca2);
  ASSERT_EQ(As("root", {Url("/healthz")}).status, 200);
  KeptAlive established(PortOf(server_->url()), dir_->path(), "root");
  ASSERT_EQ(established.Get("/healthz"), 200);
  WritePem(dir_->path(), "server", Issue("annals", {}, &ca2, false, -3600, 86400, "IP:127.0.0.1"));
  EXPECT_EQ(As("root", {Url("/healthz")}).status, 200);  // not reloaded yet
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  CurlResult r;
  for (int i = 0; i < 50; ++i) {
    r = Curl({"--cacert", P("ca2.crt"), "--cert", P("root.crt"), "--key", P("root.key"), Url("/healthz")});
    if (r.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(As("root", {Url("/healthz")}).status, 0);  // the old CA no longer vouches
  // A connection made before the reload is not dropped.
  EXPECT_EQ(established.Get("/healthz"), 200);
  // Put the original back for the other tests.
  WritePem(dir_->path(), "server", Issue("annals", {}, &ca_, false, -3600, 86400, "IP:127.0.0.1"));
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  for (int i = 0; i < 50 && As("root", {Url("/healthz")}).status != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

TEST_F(Auth, SlowClientsAreCutOff) {
  // A slowloris: a TCP connection that sends half a request and waits.
  int fd = testutil::ConnectLoopback(testutil::PortOfUrl(server_->url()));
  ASSERT_GE(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto t0 = std::chrono::steady_clock::now();
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {}  // no TLS hello: closed by the handshake timeout
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(n, 0) << "connection not closed";
  EXPECT_LT(secs, 9.5);
  close(fd);
}

TEST_F(Auth, PerSourceIngestRole) {
  const uint64_t before = LogSize();
  // The CI pipeline may post its CloudEvents but not impersonate the apiserver.
  EXPECT_EQ(As("ci", {"-X", "POST", "--data-binary", "@" + P("events.json"), Url("/v1/ingest/k8s-audit")}).status,
            403);
  EXPECT_EQ(LogSize(), before);
  CurlResult r = As("ci", {"-X", "POST", "--data-binary",
                           R"({"specversion":"1.0","id":"deploy-1","source":"/ci/annals","type":"com.example.deploy"})",
                           Url("/v1/ingest/events")});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(LogSize(), before + 1);
  // ... nor the TCP connector.
  SendTls(tcp_port_, dir_->path(), "ci", testutil::UniqueVariant(testutil::CorpusAuditLines()[0], "ci") + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(LogSize(), before + 1);
}

// A ServiceAccount token, vouched for by the API server's TokenReview, is
// the ServiceAccount: its groups bind it like any other caller's (here,
// system:serviceaccounts:team-a reads team-a only), and its reads are
// recorded under its name.
TEST_F(Auth, ServiceAccountTokenIsReviewedAndGetsItsGroupBinding) {
  const uint64_t from = LogSize();
  CurlResult s = Token(kTeamAToken, {Url("/v1/state?kind=Pod")});
  ASSERT_EQ(s.status, 200) << s.body;
  json a = json::parse(s.body);
  ASSERT_EQ(a["count"], 1);
  EXPECT_EQ(a["objects"][0]["namespace"], "team-a");
  EXPECT_EQ(Token(kTeamAToken, {Url("/v1/state?kind=Pod&namespace=team-b")}).status, 403);
  CurlResult e = Token(kTeamAToken, {Url("/v1/events?resource=pods")});
  ASSERT_EQ(e.status, 200) << e.body;
  EXPECT_EQ(e.body.find("team-b"), std::string::npos);
  EXPECT_EQ(Token(kTeamAToken, {Url("/metrics")}).status, 403);
  CurlResult w = Token(kTeamAToken, {"-X", "POST", "--data-binary", "@" + P("events.json"),
                                     Url("/v1/ingest/k8s-audit")});
  EXPECT_EQ(w.status, 403) << w.body;
  EXPECT_NE(w.body.find("system:serviceaccount:team-a:dashboard (tokenreview)"), std::string::npos) << w.body;

  auto reads = ReadEntries(from);
  ASSERT_EQ(reads.size(), 3u);  // two answers and the refused namespace
  for (const auto& r : reads) {
    EXPECT_EQ(r["event"]["user"], "system:serviceaccount:team-a:dashboard");
    EXPECT_EQ(r["event"]["auth"], "tokenreview");
    EXPECT_EQ(r["event"]["groups"],
              json::array({"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"}));
    EXPECT_EQ(r["meta"]["read"]["user"], "system:serviceaccount:team-a:dashboard");
  }
  EXPECT_EQ(reads[1]["event"]["status"], 403);

  // A users binding names a ServiceAccount too: ops/ingester may write.
  const std::string cloud_event =
      R"({"specversion":"1.0","id":"sa-ingest-1","source":"/ops","type":"com.example.rollout"})";
  CurlResult in = Token(kOpsToken, {"-X", "POST", "--data-binary", cloud_event, Url("/v1/ingest/events")});
  EXPECT_EQ(in.status, 200) << in.body;
  EXPECT_EQ(Token(kOpsToken, {Url("/v1/events")}).status, 403);
}

TEST_F(Auth, TokenTheApiServerRejectsIs401AndAppendsNothing) {
  const uint64_t before = LogSize();
  const int reviews = TokenReviews(*kube_);
  CurlResult r = Token("eyJhbGciOiJSUzI1NiJ9.unknown.sig", {Url("/v1/state?kind=Pod")});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("rejected by the Kubernetes API server"), std::string::npos) << r.body;
  EXPECT_EQ(Token("eyJhbGciOiJSUzI1NiJ9.unknown2.sig",
                  {"-X", "POST", "--data-binary", "@" + P("events.json"), Url("/v1/ingest/k8s-audit")})
                .status,
            401);
  EXPECT_EQ(TokenReviews(*kube_), reviews + 2) << "each unknown token was reviewed";
  EXPECT_EQ(LogSize(), before) << "neither a write nor a self-audit entry";
}

TEST_F(Auth, TokenReviewAnswersAreCachedByTokenHash) {
  const std::string token = "eyJhbGciOiJSUzI1NiJ9.cache-test.sig";
  RegisterServiceAccount(*kube_, token, "team-a", "cache-test");
  const int reviews = TokenReviews(*kube_);
  ASSERT_EQ(Token(token, {Url("/v1/events?limit=1")}).status, 200);
  EXPECT_EQ(TokenReviews(*kube_), reviews + 1);
  ASSERT_EQ(Token(token, {Url("/v1/events?limit=1")}).status, 200);
  ASSERT_EQ(Token(token, {Url("/v1/state?kind=Pod")}).status, 200);
  EXPECT_EQ(TokenReviews(*kube_), reviews + 1) << "answered from the cache";
  // A refusal is remembered too (for 10 s): a flood of one bad token does
  // not become a flood of TokenReviews.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Token("not-a-token", {Url("/v1/events")}).status, 401);
  EXPECT_LE(TokenReviews(*kube_), reviews + 2);
  CurlResult m = As("root", {Url("/metrics")});
  EXPECT_NE(m.body.find("annals_token_reviews_total{result=\"cached\"}"), std::string::npos) << m.body;
}

TEST_F(Auth, TokenReviewFailsClosedWhenTheApiServerRefusesAndRemembersNothing) {
  const std::string token = "eyJhbGciOiJSUzI1NiJ9.outage-test.sig";
  RegisterServiceAccount(*kube_, token, "team-a", "outage-test");
  kube_->Control("refuse", {{"on", true}});
  const uint64_t before = LogSize();
  CurlResult r = Token(token, {Url("/v1/events?limit=1")});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("did not answer the TokenReview"), std::string::npos) << r.body;
  EXPECT_EQ(LogSize(), before);
  kube_->Control("refuse", {{"on", false}});
  // The failure was not cached: the next request is reviewed and admitted.
  r = Token(token, {Url("/v1/events?limit=1")});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(server_->StderrText().find("TokenReview failed"), std::string::npos);
}

// Last in the suite: it adds corpus events (and their objects) to the log.
TEST_F(Auth, TcpConnectorOverTlsTakesLinesOnlyFromIngesters) {
  std::string lines;
  size_t n = 0;
  for (const auto& l : testutil::CorpusAuditLines()) {
    if (l.find("\"auditID\"") == std::string::npos) continue;
    lines += testutil::UniqueVariant(l, "tcp-tls") + "\n";
    if (++n == 5) break;
  }
  const uint64_t before = LogSize();
  SendTls(tcp_port_, dir_->path(), "alice", lines);     // a reader: refused
  SendTls(tcp_port_, dir_->path(), "", lines);          // no certificate: refused
  SendTls(tcp_port_, dir_->path(), "mallory", lines);   // another CA: refused
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(LogSize(), before);
  EXPECT_TRUE(SendTls(tcp_port_, dir_->path(), "apiserver", lines));
  uint64_t after = before;
  for (int i = 0; i < 100 && after < before + n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    after = LogSize();
  }
  EXPECT_EQ(after, before + n);
  // A connection whose certificate is bound to a cluster files its lines
  // under it: the same lines again are that cluster's, not duplicates.
  EXPECT_TRUE(SendTls(tcp_port_, dir_->path(), "edge", lines));
  uint64_t edge = after;
  for (int i = 0; i < 100 && edge < after + n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    edge = LogSize();
  }
  ASSERT_EQ(edge, after + n);
  for (uint64_t i = after; i < edge; ++i) {
    CurlResult e = As("root", {Url("/v1/entries/" + std::to_string(i))});
    ASSERT_EQ(e.status, 200) << e.body;
    const json meta = json::parse(e.body)["meta"];
    EXPECT_EQ(meta.value("cluster", ""), "edge-1") << meta.dump();
    EXPECT_TRUE(meta.value("key", "").starts_with("cluster:6:edge-1/")) << meta.dump();
  }
}

// Refused requests (401, 403, 429, refused TCP connections) are recorded,
// aggregated per caller, reason and endpoint a window at a time: a flood of
// 100,000 adds a handful of entries whose counts add up to the flood.
TEST_F(Auth, RefusedRequestsAreOnTheRecordAndAFloodAddsABoundedNumberOfEntries) {
  const std::string& d = dir_->path();
  ServeOptions o;
  o.data_dir = dir_->Sub("data-denied");
  o.checkpoint_interval_ms = 50;
  const uint16_t tcp = FreePort();
  o.extra_args = {"--tls-cert", d + "/server.crt", "--tls-key", d + "/server.key", "--client-ca", d + "/ca.crt",
                  "--auth-config", d + "/auth.json", "--tcp-listen", "127.0.0.1:" + std::to_string(tcp),
                  "--denied-window", "1", "--rate-limit", "20", "--rate-burst", "20"};
  ServerProcess server(o);
  ASSERT_TRUE(server.Start().ok());
  auto url = [&](const std::string& path) { return server.url() + path; };
  auto metric = [&](const std::string& series) -> uint64_t {
    CurlResult m = As("root", {url("/metrics")});
    const size_t p = m.body.find("\n" + series + " ");
    return p == std::string::npos ? 0 : std::strtoull(m.body.c_str() + p + series.size() + 2, nullptr, 10);
  };
  auto denied = [&](uint64_t from) {
    std::vector<json> out;
    const uint64_t n = metric("annals_log_entries");
    for (uint64_t i = from; i < n; ++i) {
      json j = json::parse(As("root", {url("/v1/entries/" + std::to_string(i))}).body);
      if (j["meta"].value("type", "") == "annals.denied") out.push_back(j);
    }
    return out;
  };
  auto wait_recorded = [&](uint64_t at_least) {
    for (int i = 0; i < 200 && metric("annals_denied_records_total{result=\"recorded\"}") < at_least; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return metric("annals_denied_records_total{result=\"recorded\"}");
  };

  for (int i = 0; i < 3; ++i) EXPECT_EQ(As("", {url("/v1/events?limit=" + std::to_string(i))}).status, 401);
  EXPECT_EQ(As("alice", {"-X", "POST", "--data-binary", "@" + P("events.json"), url("/v1/ingest/k8s-audit")}).status,
            403);
  EXPECT_EQ(As("alice", {"-X", "POST", "--data-binary", "@" + P("events.json"), url("/v1/ingest/k8s-audit")}).status,
            403);
  EXPECT_EQ(As("auditor", {url("/metrics")}).status, 403);
  SendTls(tcp, d, "alice", "{}\n");  // a reader may not write lines
  SendTls(tcp, d, "", "{}\n");       // nor may a connection without a certificate
  ASSERT_GE(wait_recorded(5), 5u);
  // The window may have been cut between two of those: add up per key.
  std::map<std::string, uint64_t> counts;
  std::map<std::string, json> last;
  for (const json& e : denied(0)) {
    const json& p = e["event"];
    const std::string key = p["reason"].get<std::string>() + " " + p["endpoint"].get<std::string>() + " " +
                            p.value("user", "");
    counts[key] += p["count"].get<uint64_t>();
    last[key] = p;
    EXPECT_EQ(e["meta"]["denied"]["count"], p["count"]);
    EXPECT_EQ(e["meta"]["src"], "annals");
  }
  EXPECT_EQ(counts["unauthenticated read "], 3u);
  EXPECT_EQ(last["unauthenticated read "]["remotes"], json::array({"127.0.0.1"}));
  EXPECT_EQ(last["unauthenticated read "]["auth"], "anonymous");
  EXPECT_EQ(counts["forbidden ingest alice"], 2u);
  EXPECT_EQ(last["forbidden ingest alice"]["targets"], json::array({"POST /v1/ingest/k8s-audit"}));
  EXPECT_EQ(last["forbidden ingest alice"]["auth"], "tls");
  EXPECT_EQ(counts["forbidden admin auditor"], 1u);
  EXPECT_EQ(counts["forbidden tcp alice"], 1u);
  EXPECT_EQ(counts["unauthenticated tcp "], 1u);
  EXPECT_EQ(counts.size(), 5u) << json(counts).dump();

  // 429s are refusals too: root, over its rate (20/s).
  ASSERT_OK_AND_ASSIGN(std::string ca, testutil::ReadFile(P("ca.crt")));
  ASSERT_OK_AND_ASSIGN(std::string root_crt, testutil::ReadFile(P("root.crt")));
  ASSERT_OK_AND_ASSIGN(std::string root_key, testutil::ReadFile(P("root.key")));
  uint64_t limited = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto http, client::HttpClient::Create(server.url(), client::ClientAuth{ca, root_crt, root_key, ""}));
    for (int i = 0; i < 200; ++i) {
      auto r = http->Get("/log/checkpoint");
      limited += r.ok() && r->status == 429;
    }
  }
  EXPECT_GT(limited, 100u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // root's bucket refills

  // The flood: 100,000 anonymous questions on kept-alive connections.
  const uint64_t entries_before = metric("annals_log_entries");
  const uint64_t recorded_before = wait_recorded(0);
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; ++t)
    flood.emplace_back([&] {
      auto http = client::HttpClient::Create(server.url(), client::ClientAuth{ca, "", "", ""});
      if (!http.ok()) return;
      for (int i = 0; i < 25000; ++i) {
        auto r = (*http)->Get("/v1/state");
        if (r.ok() && r->status == 401) ++refused;
      }
    });
  for (auto& t : flood) t.join();
  ASSERT_EQ(refused.load(), 100000u);
  // Every refusal is counted, on /metrics and in the ledger.
  uint64_t in_ledger = 0;
  for (int i = 0; i < 100 && in_ledger < 100000; ++i) {
    in_ledger = 0;
    for (const json& e : denied(entries_before))
      if (e["event"]["reason"] == "unauthenticated" && e["event"]["endpoint"] == "read")
        in_ledger += e["event"]["count"].get<uint64_t>();
    if (in_ledger < 100000) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(in_ledger, 100000u);
  EXPECT_GE(metric("annals_http_denied_total{reason=\"unauthenticated\"}"), 100003u);
  EXPECT_EQ(metric("annals_http_denied_total{reason=\"rate\"}"), limited);
  uint64_t rate_in_ledger = 0;
  for (const json& e : denied(0))
    if (e["event"]["reason"] == "rate") {
      EXPECT_EQ(e["event"]["user"], "root");
      rate_in_ledger += e["event"]["count"].get<uint64_t>();
    }
  EXPECT_EQ(rate_in_ledger, limited);
  // One record a window for the flood (plus root's 429s and the metrics
  // reads' own records), not one per request.
  const uint64_t added = metric("annals_log_entries") - entries_before;
  const uint64_t records = wait_recorded(0) - recorded_before;
  std::printf("a flood of 100000 refused requests: %llu annals.denied records, %llu entries in all\n",
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(added));
  EXPECT_LT(records, 100u) << records << " records for a flood";
  EXPECT_LT(added, 400u) << added << " entries for a flood";
}

// ---------------------------------------------------------------------------
// The CLI against the secured server (docs/security.md "Clients"): every
// client command takes https://, --cacert, a client certificate, a bearer
// token (flag, file, $ANNALS_TOKEN) or a config file, and the server's roles
// apply to it as to curl.

// `annals ARGS --url URL --cacert CA` plus extra environment.
testutil::CommandResult Cli(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
  return testutil::RunAnnals(args, "", std::chrono::seconds(30), env);
}

class AuthCli : public Auth {
 protected:
  std::vector<std::string> Target() const { return {"--url", server_->url(), "--cacert", P("ca.crt")}; }
  std::vector<std::string> As(const std::string& who) const {
    std::vector<std::string> a = Target();
    a.insert(a.end(), {"--cert", P(who + ".crt"), "--key", P(who + ".key")});
    return a;
  }
  static std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  // No stray config or token from the machine running the test.
  // (A config file named by $ANNALS_CONFIG must exist; the default one may be missing.)
  const std::vector<std::string> clean_ = {"ANNALS_TOKEN", "ANNALS_URL", "ANNALS_CONFIG", "HOME=" + P("home")};
};

TEST_F(AuthCli, ClientCertificateTokenAndEnvironmentEachAuthenticateState) {
  const std::vector<std::string> state = {"state", "--at", "2024-03-01T10:00:30Z", "--kind", "Pod"};
  // alice reads team-a only: web-a, not web-b.
  auto r = Cli(Cat(Cat(state, As("alice")), {"-o", "json"}), clean_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j["count"], 1) << r.out;
  EXPECT_EQ(j["objects"][0]["name"], "web-a") << r.out;
  // The same with her bearer token, from the flag and from a token file.
  auto t = Cli(Cat(Cat(state, Target()), {"--token", "alice-token"}), clean_);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("web-a"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find("web-b"), std::string::npos) << t.out;
  std::ofstream(P("alice.token")) << "alice-token\n";
  auto tf = Cli(Cat(Cat(state, Target()), {"--token-file", P("alice.token")}), clean_);
  ASSERT_EQ(tf.exit_code, 0) << tf.err;
  EXPECT_EQ(tf.out, t.out);
  // $ANNALS_TOKEN: bob reads team-a and team-b.
  std::vector<std::string> env = clean_;
  env[0] = "ANNALS_TOKEN=ro-token";
  auto e = Cli(Cat(Cat(state, Target()), {"-n", "team-b"}), env);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(e.out.find("web-a"), std::string::npos) << e.out;
  EXPECT_NE(e.out.find("web-b"), std::string::npos) << e.out;
  // A flag wins over the environment.
  auto fe = Cli(Cat(Cat(state, Target()), {"--token", "alice-token"}), env);
  ASSERT_EQ(fe.exit_code, 0) << fe.err;
  EXPECT_EQ(fe.out, t.out);
}

TEST_F(AuthCli, ConfigFileNamesServerCaAndCertificate) {
  // Relative paths in the file are relative to its directory.
  std::ofstream(P("client.yaml")) << "server: " << server_->url() << "\ncacert: ca.crt\ncert: alice.crt\n"
                                  << "key: alice.key\n";
  std::vector<std::string> env = clean_;
  env[2] = "ANNALS_CONFIG=" + P("client.yaml");
  auto r = Cli({"state", "--at", "2024-03-01T10:00:30Z", "--kind", "Pod"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("web-a"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("web-b"), std::string::npos) << r.out;
  auto w = Cli({"whois", "10.1.0.1", "--at", "2024-03-01T10:00:30Z", "--config", P("client.yaml")}, clean_);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  EXPECT_NE(w.out.find("web-a"), std::string::npos) << w.out;
  // An unknown key is an error, not a silent default.
  std::ofstream(P("bad.yaml")) << "server: " << server_->url() << "\ncertificate: alice.crt\n";
  auto b = Cli({"state", "--at", "2024-03-01T10:00:30Z", "--config", P("bad.yaml")}, clean_);
  EXPECT_NE(b.exit_code, 0);
  EXPECT_NE(b.err.find("certificate"), std::string::npos) << b.err;
}

TEST_F(AuthCli, EveryQuestionCommandWorksOverTls) {
  auto h = Cli(Cat({"history", "pod/web-a", "-n", "team-a", "-o", "json"}, As("auditor")), clean_);
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(json::parse(h.out)["count"], 2) << h.out;
  auto w = Cli(Cat({"whois", "10.2.0.1", "--at", "2024-03-01T10:00:30Z"}, As("auditor")), clean_);
  ASSERT_EQ(w.exit_code, 0) << w.err;
  EXPECT_NE(w.out.find("web-b"), std::string::npos) << w.out;
  auto s = Cli(Cat({"search", "--resource", "pods", "--group-by", "namespace", "-o", "json"}, As("auditor")), clean_);
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("team-b"), std::string::npos) << s.out;
  // watch from the start: the four pod writes are changes.
  auto wa = Cli(Cat({"watch", "--from", "0", "--resource", "pods", "--max-events", "4"}, As("auditor")), clean_);
  ASSERT_EQ(wa.exit_code, 0) << wa.err;
  EXPECT_EQ(std::count(wa.out.begin(), wa.out.end(), '\n'), 4) << wa.out;
  // append as the CI pipeline (ingest:events): stored; as alice (a reader): refused.
  const uint64_t before = LogSize();
  const std::string line =
      R"({"specversion":"1.0","id":"cli-append-1","source":"/ci/cli","type":"com.example.deploy"})";
  auto a = testutil::RunAnnals(Cat({"append"}, As("ci")), line + "\n", std::chrono::seconds(30), clean_);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(LogSize(), before + 1);
  auto ar = testutil::RunAnnals(Cat({"append"}, As("alice")),
                                R"({"specversion":"1.0","id":"cli-append-2","source":"/x","type":"x"})"
                                "\n",
                                std::chrono::seconds(30), clean_);
  EXPECT_NE(ar.exit_code, 0);
  EXPECT_NE(ar.err.find("403"), std::string::npos) << ar.err;
  EXPECT_EQ(LogSize(), before + 1);
}

TEST_F(AuthCli, VerifyUrlChecksTheSignedCheckpointOverTls) {
  // Anonymous callers have the verify role: no client credential needed.
  auto v = Cli(Cat({"verify", "--key", server_->verifier_key()}, Target()), clean_);
  ASSERT_EQ(v.exit_code, 0) << v.err << v.out;
  // A different log's key is refused: the signature is checked.
  auto other = Cli({"keygen", "--out", P("other.key"), "--name", "someone-else"}, clean_);
  ASSERT_EQ(other.exit_code, 0) << other.err;
  std::string other_vkey;
  for (std::istringstream in(other.out); std::getline(in, other_vkey);)
    if (other_vkey.rfind("someone-else+", 0) == 0) break;
  ASSERT_EQ(other_vkey.rfind("someone-else+", 0), 0u) << other.out;
  auto bad = Cli(Cat({"verify", "--key", other_vkey}, Target()), clean_);
  EXPECT_NE(bad.exit_code, 0) << bad.out;
}

TEST_F(AuthCli, RefusalsSayWhy) {
  const std::vector<std::string> state = {"state", "--at", "2024-03-01T10:00:30Z", "--kind", "Pod"};
  // Without our CA the server's certificate does not verify.
  auto n = Cli(Cat(state, {"--url", server_->url(), "--cert", P("alice.crt"), "--key", P("alice.key")}), clean_);
  EXPECT_NE(n.exit_code, 0);
  EXPECT_NE(n.err.find("certificate verify failed"), std::string::npos) << n.err;
  // Anonymous may verify, not read.
  auto a = Cli(Cat(state, Target()), clean_);
  EXPECT_NE(a.exit_code, 0);
  EXPECT_NE(a.err.find("authentication required (read role)"), std::string::npos) << a.err;
  // A token nobody issued.
  auto t = Cli(Cat(Cat(state, Target()), {"--token", "not-a-token"}), clean_);
  EXPECT_NE(t.exit_code, 0);
  EXPECT_NE(t.err.find("bearer token rejected"), std::string::npos) << t.err;
  // alice asking for team-b.
  auto ns = Cli(Cat(Cat(state, As("alice")), {"-n", "team-b"}), clean_);
  EXPECT_NE(ns.exit_code, 0);
  EXPECT_NE(ns.err.find("you may not read namespace team-b"), std::string::npos) << ns.err;
  // A certificate without its key, a missing file: said before any request.
  auto k = Cli(Cat(Cat(state, Target()), {"--cert", P("alice.crt")}), clean_);
  EXPECT_NE(k.exit_code, 0);
  EXPECT_NE(k.err.find("--key"), std::string::npos) << k.err;
  auto m = Cli(Cat(Cat(state, Target()), {"--token-file", P("no-such-token")}), clean_);
  EXPECT_NE(m.exit_code, 0);
  EXPECT_NE(m.err.find("no-such-token"), std::string::npos) << m.err;
}

TEST_F(AuthCli, KubectlAuditTakesFlagsOrTheKubeconfigUser) {
  const std::string plugin = KUBECTL_AUDIT_BINARY;
  std::vector<std::string> env = clean_;
  env.push_back("KUBECONFIG=" + P("no-such-kubeconfig"));
  auto r = testutil::RunProgram({plugin, "pod/web-a", "-n", "team-a", "--server", server_->url(), "--cacert",
                                 P("ca.crt"), "--client-certificate", P("auditor.crt"), "--client-key",
                                 P("auditor.key"), "-o", "json"},
                                "", std::chrono::seconds(30), env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["count"], 2) << r.out;
  // The kubeconfig's user (here a client certificate) when nothing else names one.
  std::ofstream(P("user.kubeconfig")) << "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                                      << "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                                      << "clusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1'}\n"
                                      << "users:\n- name: u\n  user:\n    client-certificate: " << P("alice.crt")
                                      << "\n    client-key: " << P("alice.key") << "\n";
  auto kc = testutil::RunProgram({plugin, "pod/web-a", "-n", "team-a", "--server", server_->url(), "--cacert",
                                  P("ca.crt"), "--kubeconfig", P("user.kubeconfig")},
                                 "", std::chrono::seconds(30), env);
  ASSERT_EQ(kc.exit_code, 0) << kc.err;
  EXPECT_NE(kc.out.find("web-a"), std::string::npos) << kc.out;
  // ... and she still cannot see team-b through it.
  auto b = testutil::RunProgram({plugin, "pod/web-b", "-n", "team-b", "--server", server_->url(), "--cacert",
                                 P("ca.crt"), "--kubeconfig", P("user.kubeconfig")},
                                "", std::chrono::seconds(30), env);
  EXPECT_NE(b.exit_code, 0);
  EXPECT_NE(b.err.find("you may not read namespace team-b"), std::string::npos) << b.err;
}

// The watch collector posts to the secured ledger with a client certificate
// bound to ingest:k8s-watch, and that role may post nothing else.
TEST_F(AuthCli, WatchCollectorIngestsOverTlsWithItsOwnRole) {
  EXPECT_EQ(Auth::As("collector", {"-X", "POST", "--data-binary", "@" + P("events.json"),
                                   Url("/v1/ingest/k8s-audit")}).status,
            403);
  EXPECT_EQ(Auth::As("ci", {"-X", "POST", "--data-binary",
                            R"({"type":"ADDED","version":"v1","resource":"pods","object":{}})",
                            Url("/v1/ingest/k8s-watch")}).status,
            403);
  json pod = CorpusPod();
  pod["kind"] = "Pod";
  pod["apiVersion"] = "v1";
  pod["metadata"]["namespace"] = "team-c";
  pod["metadata"]["name"] = "watched";
  pod["metadata"]["uid"] = "7a1b2c3d-0000-4000-8000-00000000c0c0";
  pod["metadata"].erase("ownerReferences");
  kube_->Apply("ADDED", pod);
  const std::string kubeconfig = testutil::WriteFakeKubeconfig(P("collector.kubeconfig"), kube_->port(),
                                                               std::string("token: ") + kReviewerToken);
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> args = {testutil::AnnalsBinary(), "collect", "--url", server_->url(), "--cacert",
                                     P("ca.crt"), "--cert", P("collector.crt"), "--key", P("collector.key"),
                                     "--state-dir", P("collect-state"), "--kubeconfig", kubeconfig,
                                     "--watch-resources", "pods", "--watch-timeout", "3"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fd = ::open(P("collect.err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    CurlResult s = Auth::As("root", {Url("/v1/state?kind=Pod&namespace=team-c")});
    seen = s.status == 200 && json::parse(s.body)["count"] == 1;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  std::ifstream err(P("collect.err"));
  std::string log((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(seen) << log;
}

// `annals serve --data DIR args...` must refuse to start, saying `why`.
void ExpectServeRefuses(std::vector<std::string> args, const std::string& why) {
  TempDir d;
  args.insert(args.begin(), {"serve", "--data", d.Sub("data")});
  auto r = testutil::RunAnnals(args, "", std::chrono::seconds(20));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
}

TEST(AuthListen, PlainHttpOnlyOnLoopbackUnlessInsecureListen) {
  ExpectServeRefuses({"--listen", "0.0.0.0:0"}, "--insecure-listen");
}

TEST(AuthListen, PerCallerRateLimitAnswers429) {
  TempDir d;
  ServeOptions o;
  o.data_dir = d.Sub("data");
  o.extra_args = {"--rate-limit", "1", "--rate-burst", "3"};
  ServerProcess server(o);
  ASSERT_TRUE(server.Start().ok());
  std::vector<int> statuses;
  for (int i = 0; i < 6; ++i) statuses.push_back(Curl({server.url() + "/log/checkpoint"}).status);
  EXPECT_EQ(statuses[0], 200);
  EXPECT_EQ(statuses[2], 200);
  EXPECT_GE(std::count(statuses.begin(), statuses.end(), 429), 2) << ::testing::PrintToString(statuses);
  EXPECT_EQ(Curl({server.url() + "/healthz"}).status, 200);  // health checks are exempt
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(Curl({server.url() + "/log/checkpoint"}).status, 200);  // the bucket refills
}

// A plain-HTTP loopback server whose bearer tokens are reviewed by its own
// fake API server (each test may break that one).
struct ReviewedServer {
  explicit ReviewedServer(std::vector<std::string> extra_args = {},
                          const std::string& reviewer_token = kReviewerToken)
      : kube(kReviewerToken) {
    EXPECT_GT(kube.port(), 0);
    RegisterServiceAccount(kube, kTeamAToken, "team-a", "dashboard");
    std::ofstream(dir.Sub("tokens")) << HashHex("static-token") << " carol auditors\n";
    std::ofstream(dir.Sub("auth.json")) << R"({"tokens":"tokens","groups":{"auditors":["read"],
        "system:serviceaccounts:team-a":{"roles":["read"],"namespaces":["team-a"]}}})";
    ServeOptions o;
    o.data_dir = dir.Sub("data");
    o.extra_args = {"--auth-config", dir.Sub("auth.json"), "--token-review",
                    testutil::WriteFakeKubeconfig(dir.Sub("kubeconfig"), kube.port(), "token: " + reviewer_token)};
    o.extra_args.insert(o.extra_args.end(), extra_args.begin(), extra_args.end());
    server = std::make_unique<ServerProcess>(o);
    Status s = server->Start();
    EXPECT_TRUE(s.ok()) << s.message();
  }
  CurlResult Get(const std::string& token, const std::string& path) {
    return Curl({"-H", "Authorization: Bearer " + token, server->url() + path});
  }

  TempDir dir;
  FakeApiServer kube;
  std::unique_ptr<ServerProcess> server;
};

TEST(AuthTokenReview, WithAnAudienceOnlyTokensMeantForAnnalsAreAccepted) {
  ReviewedServer rs({"--token-review-audience", "annals"});
  // kTeamAToken carries the API server's audience: valid, but not for annals.
  CurlResult r = rs.Get(kTeamAToken, "/v1/events");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("audiences"), std::string::npos) << r.body;
  const std::string ours = "eyJhbGciOiJSUzI1NiJ9.aud-annals.sig";
  RegisterServiceAccount(rs.kube, ours, "team-a", "dashboard", {"annals"});
  EXPECT_EQ(rs.Get(ours, "/v1/events").status, 200);
}

TEST(AuthTokenReview, IncompleteFlagsAreRefusedAtStart) {
  // An audience without TokenReview is a mistake.
  ExpectServeRefuses({"--token-review-audience", "annals"}, "--token-review-audience needs --token-review");
  // The default roles would make every ServiceAccount an admin.
  ExpectServeRefuses({"--token-review", "in-cluster"}, "--token-review needs --auth-config");
  // Not in a cluster: said so, and nothing served.
  if (std::getenv("KUBERNETES_SERVICE_HOST")) return;  // this test runs in one
  TempDir d;
  std::ofstream(d.Sub("auth.json")) << R"({"groups":{}})";
  ExpectServeRefuses({"--auth-config", d.Sub("auth.json"), "--token-review", "in-cluster"},
                     "--token-review: not in a cluster");
}

// A TokenReview waits on a review thread, not a listener thread: while
// three of them hang (the API server answers after 8 s; annals gives up
// after 5 s), other callers are served at once. Then the API server goes
// away: unknown tokens are refused, a cached one still works.
TEST(AuthTokenReview, SlowOrDeadApiServerFailsClosedWithoutStallingOthers) {
  ReviewedServer rs;
  ASSERT_EQ(rs.Get(kTeamAToken, "/v1/events").status, 200);  // cached from now on
  rs.kube.Control("review-delay", {{"seconds", 8}});
  std::vector<std::thread> slow;
  std::vector<CurlResult> slow_results(3);
  std::vector<double> slow_secs(3);
  for (int i = 0; i < 3; ++i)
    slow.emplace_back([&, i] {
      auto t0 = std::chrono::steady_clock::now();
      slow_results[i] = rs.Get("eyJhbGciOiJSUzI1NiJ9.slow-" + std::to_string(i) + ".sig", "/v1/events");
      slow_secs[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // all three are waiting now
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(Curl({rs.server->url() + "/healthz"}).status, 200);
    EXPECT_EQ(rs.Get("static-token", "/v1/events?limit=1").status, 200);
    EXPECT_EQ(rs.Get(kTeamAToken, "/v1/events?limit=1").status, 200);
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  }
  for (auto& t : slow) t.join();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(slow_results[i].status, 401) << slow_results[i].body;
    EXPECT_NE(slow_results[i].body.find("did not answer the TokenReview"), std::string::npos)
        << "gave up waiting, not an answer: " << slow_results[i].body;
    EXPECT_GE(slow_secs[i], 4.5);
    EXPECT_LT(slow_secs[i], 16.0);  // two review threads: the third waits for one
  }
  rs.kube.Control("review-delay", {{"seconds", 0}});

  rs.kube.Kill();
  auto t0 = std::chrono::steady_clock::now();
  CurlResult r = rs.Get("eyJhbGciOiJSUzI1NiJ9.after-kill.sig", "/v1/events");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("did not answer the TokenReview"), std::string::npos) << r.body;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3.0);
  EXPECT_EQ(rs.Get(kTeamAToken, "/v1/events?limit=1").status, 200) << "cached for 2 minutes";
  EXPECT_EQ(rs.server->Stop().code(), StatusCode::kOk);  // stops cleanly with review threads
}

TEST(AuthTokenReview, ApiServerRefusingAnnalsOwnCredentialsFailsClosedAndSaysWhy) {
  ReviewedServer rs({}, "wrong-reviewer-token");
  CurlResult r = rs.Get(kTeamAToken, "/v1/events");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.body.find("wrong-reviewer-token"), std::string::npos);
  EXPECT_EQ(rs.kube.Stats()["unauthorized"], 1);
  EXPECT_NE(rs.server->StderrText().find("create on tokenreviews.authentication.k8s.io"), std::string::npos)
      << rs.server->StderrText();
}

}  // namespace
}  // namespace annals
