#include "ledger/checkpoint_log.h"

#include "common/bytes.h"
#include "common/crc32c.h"
#include "common/log.h"

namespace annals::ledger {
namespace {

constexpr uint32_t kMaxNote = 1 << 20;

std::string Frame(std::string_view note) {
  std::string out;
  PutBigEndian32(&out, static_cast<uint32_t>(note.size()));
  uint32_t crc = crc32c::Extend(crc32c::Value(out.data(), 4), note.data(), note.size());
  PutBigEndian32(&out, crc32c::Mask(crc));
  out.append(note);
  return out;
}

std::string Header() {
  std::string h(kCheckpointLogMagic, 4);
  PutBigEndian32(&h, kCheckpointLogVersion);
  return h;
}

// Where the records start: after the header, or at 0 in a file written
// before there was one. An empty file, or one holding only part of a
// header (a crash while creating it), has no records.
StatusOr<uint64_t> RecordsStart(std::string_view v) {
  const std::string h = Header();
  if (v.size() < kCheckpointLogHeaderSize && h.starts_with(v)) return v.size();
  if (!v.starts_with(std::string_view(kCheckpointLogMagic, 4))) return 0;
  const uint32_t version = GetBigEndian32(v.data() + 4);
  if (version != kCheckpointLogVersion)
    return FailedPreconditionError(std::string(kCheckpointLogName) + " has format version " +
                                   std::to_string(version) + "; this annals reads version " +
                                   std::to_string(kCheckpointLogVersion));
  return kCheckpointLogHeaderSize;
}

}  // namespace

Status CheckpointLog::Scan(const std::string& dir,
                           const std::function<Status(uint64_t, std::string_view)>& fn,
                           std::string* cut, env::Env* env) {
  std::string path = dir + "/" + kCheckpointLogName;
  auto data = env::ReadFileToString(env, path);
  if (!data.ok()) {
    if (data.status().code() == StatusCode::kNotFound) return OkStatus();
    return data.status();
  }
  std::string_view v = *data;
  ASSIGN_OR_RETURN(uint64_t off, RecordsStart(v));
  uint64_t n = 0;
  while (off < v.size()) {
    std::string why;
    // A crash can tear only the last record (each append is one small write
    // and a sync): damage with good records after it is not a torn tail.
    bool torn = true;
    if (v.size() - off < 8) {
      why = "truncated record header";
    } else {
      uint32_t len = GetBigEndian32(v.data() + off);
      if (len == 0 || len > kMaxNote) {
        why = "bad record length";
        torn = v.substr(off).find_first_not_of('\0') == std::string_view::npos;
      } else if (v.size() - off - 8 < len) {
        why = "truncated record";
      } else {
        uint32_t want = crc32c::Unmask(GetBigEndian32(v.data() + off + 4));
        uint32_t got = crc32c::Extend(crc32c::Value(v.data() + off, 4), v.data() + off + 8, len);
        if (want != got) {
          why = "CRC mismatch";
          torn = off + 8 + len == v.size();
        } else {
          if (fn) RETURN_IF_ERROR(fn(n, v.substr(off + 8, len)));
          off += 8 + len;
          ++n;
          continue;
        }
      }
    }
    std::string msg = "checkpoint record " + std::to_string(n) + " at byte " +
                      std::to_string(off) + ": " + why;
    if (!torn) return DataLossError(msg + " (not at the end of the file: damage, not a torn write)");
    if (cut) {
      *cut = msg;
      // Tail position is encoded for Open() in the message's byte offset.
      return OkStatus();
    }
    return DataLossError(msg);
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<CheckpointLog>> CheckpointLog::Open(const std::string& dir,
                                                             std::string* cut,
                                                             env::Env* env) {
  RETURN_IF_ERROR(env->CreateDirs(dir));
  std::unique_ptr<CheckpointLog> log(new CheckpointLog());
  log->env_ = env;
  log->dir_ = dir;
  std::string path = dir + "/" + kCheckpointLogName;
  uint64_t good = 0;
  if (auto data = env::ReadFileToString(env, path); data.ok()) {
    ASSIGN_OR_RETURN(good, RecordsStart(*data));
  }
  std::string why;
  RETURN_IF_ERROR(Scan(
      dir,
      [&](uint64_t, std::string_view note) {
        log->latest_.assign(note);
        good += 8 + note.size();
        return OkStatus();
      },
      &why, env));
  ASSIGN_OR_RETURN(log->file_, env->OpenFile(path, env::OpenMode::kCreate));
  env::File* f = log->file_.get();
  if (!why.empty()) {
    if (cut) *cut = why;
    RETURN_IF_ERROR(f->Truncate(good));
    RETURN_IF_ERROR(f->Sync());
  }
  if (good < kCheckpointLogHeaderSize) {
    // No record yet (a new file, a header torn at creation, or nothing
    // good left after a cut): start the file with the header.
    const std::string h = Header();
    RETURN_IF_ERROR(f->Truncate(0));
    RETURN_IF_ERROR(f->Write(0, h));
    RETURN_IF_ERROR(f->Sync());
    good = h.size();
  }
  log->bytes_ = good;
  if (auto c = env::ReadFileToString(env, dir + "/checkpoint"); c.ok() && c->size() <= kMaxNote) log->copy_ = *c;
  RETURN_IF_ERROR(env->SyncDir(dir));
  return log;
}

CheckpointLog::~CheckpointLog() = default;

Status CheckpointLog::Append(std::string_view note, bool copy) {
  const std::string rec = Frame(note);
  if (Status w = file_->Write(bytes_, rec); !w.ok()) {
    // Nothing was synced: cut what part of the record reached the file and
    // let the caller try again (a full disk) or fail.
    (void)file_->Truncate(bytes_);
    return w;
  }
  // A failed fdatasync is never retried: Internal, even for ENOSPC.
  if (Status s = file_->Sync(); !s.ok()) return InternalError(std::string("fdatasync ") + kCheckpointLogName + ": " + s.message());
  bytes_ += rec.size();
  latest_.assign(note);
  // The record is durable: the copy's failure is reported, not returned, so
  // the checkpoint is published and never appended twice.
  if (copy) WriteCopy(note);
  return OkStatus();
}

void CheckpointLog::WriteCopy(std::string_view note) {
  if (Status c = env::WriteFileAtomic(env_, dir_ + "/checkpoint", note, 0644, /*sync=*/false); !c.ok()) {
    (void)env_->RemoveFile(dir_ + "/checkpoint.tmp");
    if (!copy_failed_) log::Warning("cannot update the copy of the latest checkpoint: %s", c.message().c_str());
    copy_failed_ = true;
  } else {
    copy_failed_ = false;
  }
}

}  // namespace annals::ledger
