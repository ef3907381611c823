#include "testutil/server_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

namespace annals::testutil {

namespace {

using Clock = std::chrono::steady_clock;

#ifndef ANNALS_BINARY
#error "ANNALS_BINARY must be defined to the path of the annals binary"
#endif
#ifndef ANNALS_CORPUS_DIR
#error "ANNALS_CORPUS_DIR must be defined"
#endif

// argv for execv, built before fork (no allocation in the child).
struct Argv {
  std::vector<std::string> strings;
  std::vector<char*> ptrs;
  explicit Argv(std::vector<std::string> s) : strings(std::move(s)) {
    for (auto& a : strings) ptrs.push_back(a.data());
    ptrs.push_back(nullptr);
  }
};

// In the child, after fork: die with the parent, default signal state.
void ChildSetup(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(126);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGINT, SIG_DFL);
}

// In the child, after the dup2()s: close every other descriptor (sockets
// the test holds to other servers, pipes of other children), which are not
// all close-on-exec.
void CloseOtherFds() {
  if (::close_range(3, ~0U, 0) == 0) return;
  for (int fd = 3; fd < 4096; ++fd) ::close(fd);
}

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::string AnnalsBinary() { return ANNALS_BINARY; }
std::string CorpusDir() { return ANNALS_CORPUS_DIR; }

bool MakeSelfSignedCert(const std::string& cert, const std::string& key) {
  const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" + key +
                          "' -out '" + cert +
                          "' -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
                          " > /dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/annals-it-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp %s: %s\n", tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

CommandResult RunAnnals(const std::vector<std::string>& args, std::string_view input,
                        std::chrono::seconds timeout, const std::vector<std::string>& env) {
  std::vector<std::string> a{AnnalsBinary()};
  a.insert(a.end(), args.begin(), args.end());
  return RunProgram(a, input, timeout, env);
}

CommandResult RunProgram(const std::vector<std::string>& program_args, std::string_view input,
                         std::chrono::seconds timeout, const std::vector<std::string>& env) {
  CommandResult res;
  Argv argv(program_args);
  // The child's environment, built before fork (nothing allocates after it).
  std::vector<std::string> vars;
  for (char** e = environ; *e; ++e) vars.emplace_back(*e);
  for (const std::string& change : env) {
    const std::string name = change.substr(0, change.find('='));
    std::erase_if(vars, [&](const std::string& v) { return v.compare(0, name.size() + 1, name + "=") == 0; });
    if (change.size() > name.size()) vars.push_back(change);
  }
  Argv envp(std::move(vars));
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    res.err = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    res.err = std::string("fork: ") + std::strerror(errno);
    return res;
  }
  if (pid == 0) {
    ChildSetup(parent);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    CloseOtherFds();
    ::execve(argv.ptrs[0], argv.ptrs.data(), envp.ptrs.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  int in_fd = in[1], out_fd = out[0], err_fd = err[0];
  ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in_fd >= 0) fds[idx_in = n++] = {in_fd, POLLOUT, 0};
    if (out_fd >= 0) fds[idx_out = n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[idx_err = n++] = {err_fd, POLLIN, 0};
    int left = MillisLeft(deadline);
    if (left == 0) {
      timed_out = true;
      break;
    }
    int r = ::poll(fds, n, left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (idx_in >= 0 && fds[idx_in].revents) {
      ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
    auto drain = [](int* fd, short revents, std::string* dst) {
      if (!revents) return;
      char buf[8192];
      ssize_t k = ::read(*fd, buf, sizeof(buf));
      if (k > 0) {
        dst->append(buf, static_cast<size_t>(k));
      } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(*fd);
        *fd = -1;
      }
    };
    if (idx_out >= 0) drain(&out_fd, fds[idx_out].revents, &res.out);
    if (idx_err >= 0) drain(&err_fd, fds[idx_err].revents, &res.err);
  }
  for (int fd : {in_fd, out_fd, err_fd})
    if (fd >= 0) ::close(fd);
  if (timed_out) {
    ::kill(pid, SIGKILL);
    res.err += "\n[test harness: killed after timeout]";
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  return res;
}

ServerProcess::ServerProcess(ServeOptions options) : options_(std::move(options)) {
  std::string d = options_.data_dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  stderr_path_ = d + ".server-stderr.txt";
}

ServerProcess::~ServerProcess() {
  if (running()) Kill();
  ClosePipe();
}

void ServerProcess::ClosePipe() {
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
}

Status ServerProcess::Start(std::chrono::seconds timeout) {
  if (running()) return FailedPreconditionError("server already running");
  std::vector<std::string> a{AnnalsBinary(),    options_.command, "--data",
                             options_.data_dir, "--listen",        options_.listen};
  if (!options_.key_file.empty()) {
    a.push_back("--key");
    a.push_back(options_.key_file);
  }
  if (options_.checkpoint_interval_ms >= 0) {
    a.push_back("--checkpoint-interval");
    a.push_back(std::to_string(options_.checkpoint_interval_ms));
  }
  if (options_.max_body > 0) {
    a.push_back("--max-body");
    a.push_back(std::to_string(options_.max_body));
  }
  if (!options_.redaction_policy.empty()) {
    a.push_back("--redaction-policy");
    a.push_back(options_.redaction_policy);
  }
  a.insert(a.end(), options_.extra_args.begin(), options_.extra_args.end());
  Argv argv(std::move(a));

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  int err_fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err_fd < 0) return ErrnoError("open " + stderr_path_, errno);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork", errno);
  if (pid == 0) {
    ChildSetup(parent);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err_fd, 2);
    CloseOtherFds();
    ::execv(argv.ptrs[0], argv.ptrs.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err_fd);
  pid_ = pid;
  stdout_fd_ = out[0];
  url_.clear();
  verifier_key_.clear();

  std::string text;
  const auto deadline = Clock::now() + timeout;
  auto line_value = [&](std::string_view prefix) -> std::string {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string_view line(text.data() + pos, nl - pos);
      if (line.starts_with(prefix)) return std::string(line.substr(prefix.size()));
      pos = nl + 1;
    }
    return "";
  };
  for (;;) {
    url_ = line_value("url: ");
    verifier_key_ = line_value("verifier key: ");
    if (!url_.empty() && !verifier_key_.empty() && (!options_.wait_ready || !line_value("ready: ").empty()))
      return OkStatus();
    int left = MillisLeft(deadline);
    pollfd p{stdout_fd_, POLLIN, 0};
    int r = left > 0 ? ::poll(&p, 1, left) : 0;
    if (r < 0 && errno == EINTR) continue;
    ssize_t k = 0;
    char buf[4096];
    if (r > 0) k = ::read(stdout_fd_, buf, sizeof(buf));
    if (k > 0) {
      text.append(buf, static_cast<size_t>(k));
      continue;
    }
    // Timeout, EOF or error: the server did not come up.
    bool exited = false;
    if (r == 0) {
      ::kill(pid_, SIGKILL);
    }
    int status = Reap(std::chrono::milliseconds(10000), &exited);
    if (!exited) {
      ::kill(pid_, SIGKILL);
      Reap(std::chrono::milliseconds(10000), &exited);
    }
    pid_ = -1;
    ClosePipe();
    std::string why = r == 0 ? "timed out waiting for the url line"
                             : "exited (status " + std::to_string(status) + ") before serving";
    return UnavailableError("annals serve " + why + "; stdout: " + text +
                            "; stderr: " + StderrText());
  }
}

int ServerProcess::Reap(std::chrono::milliseconds timeout, bool* exited) {
  *exited = false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      *exited = true;
      return status;
    }
    if (r < 0 && errno != EINTR) {
      *exited = true;  // not our child any more
      return -1;
    }
    if (Clock::now() >= deadline) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Status ServerProcess::Stop(std::chrono::seconds timeout) {
  if (!running()) return FailedPreconditionError("server not running");
  ::kill(pid_, SIGTERM);
  bool exited = false;
  int status = Reap(timeout, &exited);
  if (!exited) {
    ::kill(pid_, SIGKILL);
    Reap(std::chrono::milliseconds(10000), &exited);
    pid_ = -1;
    ClosePipe();
    return InternalError("annals serve did not exit within the timeout after SIGTERM; stderr: " +
                         StderrText());
  }
  pid_ = -1;
  ClosePipe();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return OkStatus();
  return InternalError("annals serve did not exit cleanly on SIGTERM (wait status " +
                       std::to_string(status) + "); stderr: " + StderrText());
}

void ServerProcess::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  bool exited = false;
  Reap(std::chrono::milliseconds(30000), &exited);
  pid_ = -1;
  ClosePipe();
}

Status ServerProcess::Restart(bool kill) {
  if (running()) {
    if (kill) {
      Kill();
    } else {
      RETURN_IF_ERROR(Stop());
    }
  }
  return Start();
}

std::string ServerProcess::StderrText() const {
  auto s = ReadFile(stderr_path_);
  return s.ok() ? *s : "";
}

Status CopyTree(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy(
      from, to,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks, ec);
  if (ec) return InternalError("copy " + from + " -> " + to + ": " + ec.message());
  return OkStatus();
}

StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + path, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t k = ::read(fd, buf, sizeof(buf));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      int e = errno;
      ::close(fd);
      return ErrnoError("read " + path, e);
    }
    if (k == 0) break;
    out.append(buf, static_cast<size_t>(k));
  }
  ::close(fd);
  return out;
}

namespace {
Status MakeWritable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("stat " + path, errno);
  if (::chmod(path.c_str(), st.st_mode | S_IWUSR) != 0) return ErrnoError("chmod " + path, errno);
  return OkStatus();
}
}  // namespace

Status OverwriteFile(const std::string& path, std::string_view data) {
  if (::access(path.c_str(), F_OK) == 0) RETURN_IF_ERROR(MakeWritable(path));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("open " + path, errno);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t k = ::write(fd, data.data() + done, data.size() - done);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      int e = errno;
      ::close(fd);
      return ErrnoError("write " + path, e);
    }
    done += static_cast<size_t>(k);
  }
  ::close(fd);
  return OkStatus();
}

Status FlipByte(const std::string& path, uint64_t offset, uint8_t mask) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  if (offset >= data.size())
    return OutOfRangeError("offset " + std::to_string(offset) + " beyond " + path);
  data[offset] = static_cast<char>(data[offset] ^ mask);
  return OverwriteFile(path, data);
}

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  socklen_t len = sizeof(sa);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

int ConnectLoopback(uint16_t port, int rcvbuf) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t PortOfUrl(const std::string& url) {
  return static_cast<uint16_t>(std::strtoul(url.substr(url.rfind(':') + 1).c_str(), nullptr, 10));
}

}  // namespace annals::testutil
