#include "testutil/fake_apiserver.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace annals::testutil {

using nlohmann::json;

FakeApiServer::FakeApiServer(const std::string& token, const std::string& gone_body, const std::string& tls_cert,
                             const std::string& tls_key) {
  std::vector<std::string> args = {"python3", FAKE_APISERVER, "--token", token};
  if (!gone_body.empty()) args.insert(args.end(), {"--gone-body", gone_body});
  if (!tls_cert.empty()) args.insert(args.end(), {"--tls-cert", tls_cert, "--tls-key", tls_key});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe(out) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execvp("python3", argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[256];
  while (text.find('\n') == std::string::npos) {
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  if (text.starts_with("port: ")) port_ = std::stoi(text.substr(6));
  if (size_t at = text.find(" tls: "); at != std::string::npos) tls_port_ = std::stoi(text.substr(at + 6));
  url_ = "http://127.0.0.1:" + std::to_string(port_);
  auto c = client::HttpClient::Create(url_);
  if (c.ok()) http_ = std::move(*c);
}

FakeApiServer::~FakeApiServer() { Kill(); }

void FakeApiServer::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

json FakeApiServer::Control(const std::string& what, const json& body) {
  auto r = http_->Post("/control/" + what, body.dump());
  EXPECT_TRUE(r.ok() && r->status == 200) << what;
  return r.ok() ? json::parse(r->body, nullptr, false) : json();
}

std::string FakeApiServer::Apply(const std::string& type, const json& object, const std::string& path) {
  return Control("apply", {{"path", path}, {"type", type}, {"object", object}})["rv"];
}

json FakeApiServer::Stats() {
  auto r = http_->Get("/control/stats");
  return r.ok() ? json::parse(r->body, nullptr, false) : json();
}

std::string WriteFakeKubeconfig(const std::string& path, int port, const std::string& user_auth,
                                const std::string& ca_file) {
  std::ofstream(path) << "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                      << (ca_file.empty() ? "" : "    certificate-authority: " + ca_file + "\n")
                      << "    server: " << (ca_file.empty() ? "http" : "https") << "://127.0.0.1:" << port
                      << "\ncontexts:\n- name: fake\n"
                         "  context:\n    cluster: fake\n    user: collector\ncurrent-context: fake\n"
                         "users:\n- name: collector\n  user:\n    " << user_auth << "\n";
  return path;
}

}  // namespace annals::testutil
