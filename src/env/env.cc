#include "env/env.h"

#include "common/file_util.h"

namespace annals::env {

StatusOr<std::string> ReadFileToString(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(path, OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::string out(size, '\0');
  RETURN_IF_ERROR(f->Read(0, out.size(), out.data()));
  return out;
}

Status WriteFileAtomic(Env* env, const std::string& path, std::string_view data, int perm,
                       bool sync) {
  const std::string tmp = path + ".tmp";
  Status s;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(tmp, OpenMode::kCreateTruncate, perm));
    s = f->Write(0, data);
    if (s.ok() && sync) s = f->Sync();
  }
  if (s.ok()) s = env->RenameFile(tmp, path);
  if (!s.ok()) {
    // No half-written file left behind (a full disk would keep its bytes).
    (void)env->RemoveFile(tmp);
    return s;
  }
  if (sync) return env->SyncDir(DirName(path));
  return OkStatus();
}

}  // namespace annals::env
