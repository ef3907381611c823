// Helpers for integration tests that drive the real `annals` binary:
// ServerProcess runs `annals serve` as a child process on a data directory
// and learns its URL from the "url: " line it prints; RunAnnals runs one CLI
// command to completion; TempDir is a self-removing mkdtemp directory.
//
// Thread-compatible: one ServerProcess is driven from one thread (client
// threads may talk to its URL concurrently).
#ifndef ANNALS_TEST_TESTUTIL_SERVER_PROCESS_H_
#define ANNALS_TEST_TESTUTIL_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace annals::testutil {

// Path of the annals binary under test (ANNALS_BINARY at build time).
std::string AnnalsBinary();
// The shared corpus directory (ANNALS_CORPUS_DIR at build time).
std::string CorpusDir();
// A self-signed P-256 certificate for localhost and 127.0.0.1 (openssl
// req): cert and key written as PEM. False if openssl failed.
bool MakeSelfSignedCert(const std::string& cert, const std::string& key);

// A fresh directory from mkdtemp under $TMPDIR (or /tmp), removed with
// everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Sub(std::string_view name) const;

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 if the child did not exit normally
  int signal = 0;      // the terminating signal, if any
  std::string out;
  std::string err;
};

// Runs `annals args...` with `input` on stdin and waits for it (killing it
// after `timeout`). Never fails: spawn errors show up as exit_code -1 and a
// message in err. `env` changes the child's environment: "K=V" sets K, "K"
// alone removes it.
CommandResult RunAnnals(const std::vector<std::string>& args, std::string_view input = "",
                        std::chrono::seconds timeout = std::chrono::seconds(120),
                        const std::vector<std::string>& env = {});
// The same for any program: argv[0] is its path.
CommandResult RunProgram(const std::vector<std::string>& argv, std::string_view input = "",
                         std::chrono::seconds timeout = std::chrono::seconds(120),
                         const std::vector<std::string>& env = {});

struct ServeOptions {
  std::string data_dir;
  std::string key_file;             // --key, if set
  int checkpoint_interval_ms = -1;  // --checkpoint-interval, if >= 0
  uint64_t max_body = 0;            // --max-body, if > 0
  std::vector<std::string> extra_args;
  std::string listen = "127.0.0.1:0";  // --listen (a fixed port keeps the URL across restarts)
  // Start returns once the server says it is ready ("ready: " on stdout:
  // its projections have caught up with the log), not only listening.
  bool wait_ready = true;
  // --redaction-policy, if set. "none" for tests that check what is stored
  // byte for byte against what was sent (some corpus events carry a
  // last-applied-configuration, which the default policy redacts).
  std::string redaction_policy;
  // The subcommand: "serve", or another that takes --data and --listen and
  // prints "url: " and "verifier key: " lines ("witness", wait_ready false).
  std::string command = "serve";
};

// `annals serve --data DIR --listen 127.0.0.1:0 ...` as a child process.
// The child gets SIGKILL if the test process dies. Its stderr goes to a file
// in the data directory's parent (see stderr_path()), appended across
// restarts.
class ServerProcess {
 public:
  explicit ServerProcess(ServeOptions options);
  // Kills (SIGKILL) and reaps the child if it still runs.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the server and waits (up to `timeout`) for its "url: " and
  // "verifier key: " lines. Fails with the child's stderr if it exits first.
  Status Start(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGTERM, then waits for exit; returns the exit status as a Status
  // (OK only for exit code 0). SIGKILLs after `timeout`.
  Status Stop(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGKILL and reap.
  void Kill();
  // Stop()/Kill() if running, then Start() again on the same data directory.
  Status Restart(bool kill = false);

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // "http://127.0.0.1:PORT" of the current run.
  const std::string& url() const { return url_; }
  // The "verifier key: " the current run printed.
  const std::string& verifier_key() const { return verifier_key_; }
  const std::string& stderr_path() const { return stderr_path_; }
  // Everything the server wrote to stderr so far (all runs).
  std::string StderrText() const;
  ServeOptions& options() { return options_; }

 private:
  // Waits for the child; returns its wait status.
  int Reap(std::chrono::milliseconds timeout, bool* exited);
  void ClosePipe();

  ServeOptions options_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string url_;
  std::string verifier_key_;
};

// A TCP port that was free a moment ago on 127.0.0.1 (0 if none): for
// servers that must keep their address across restarts.
uint16_t FreePort();

// A TCP connection to 127.0.0.1:port (blocking socket; the caller closes
// it), or -1. rcvbuf > 0 sets SO_RCVBUF before connecting.
int ConnectLoopback(uint16_t port, int rcvbuf = 0);
// The port of "http://127.0.0.1:PORT".
uint16_t PortOfUrl(const std::string& url);

// Copies a directory tree (files, permissions), for corrupting copies of a
// data directory.
Status CopyTree(const std::string& from, const std::string& to);

// Reads the whole file / overwrites it in place (making it writable first;
// a missing file is created with mode 0600).
StatusOr<std::string> ReadFile(const std::string& path);
Status OverwriteFile(const std::string& path, std::string_view data);
// XORs the byte at `offset` with `mask` in place.
Status FlipByte(const std::string& path, uint64_t offset, uint8_t mask = 0x01);

}  // namespace annals::testutil

#endif  // ANNALS_TEST_TESTUTIL_SERVER_PROCESS_H_
