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
  {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, env->OpenFile(tmp, OpenMode::kCreateTruncate, perm));
    RETURN_IF_ERROR(f->Write(0, data));
    if (sync) RETURN_IF_ERROR(f->Sync());
  }
  RETURN_IF_ERROR(env->RenameFile(tmp, path));
  if (sync) return env->SyncDir(DirName(path));
  return OkStatus();
}

}  // namespace annals::env
