#include "common/tar.h"

#include <cstdio>
#include <cstring>

namespace annals::tar {

namespace {

constexpr size_t kBlock = 512;
// 11 octal digits: the ustar size field's limit.
constexpr uint64_t kMaxSize = 077777777777ull;

// The header the writer makes for a member; name and size already checked.
std::string Header(std::string_view name, uint64_t size) {
  std::string h(kBlock, '\0');
  std::memcpy(h.data(), name.data(), name.size());           // name[100]
  std::memcpy(h.data() + 100, "0000644", 8);                  // mode[8]
  std::memcpy(h.data() + 108, "0000000", 8);                  // uid[8]
  std::memcpy(h.data() + 116, "0000000", 8);                  // gid[8]
  std::snprintf(h.data() + 124, 12, "%011llo", static_cast<unsigned long long>(size));  // size[12]
  std::memcpy(h.data() + 136, "00000000000", 12);             // mtime[12]
  std::memset(h.data() + 148, ' ', 8);                        // chksum[8], spaces while summed
  h[156] = '0';                                               // typeflag: regular file
  std::memcpy(h.data() + 257, "ustar", 6);                    // magic[6] "ustar\0"
  std::memcpy(h.data() + 263, "00", 2);                       // version[2]
  std::memcpy(h.data() + 329, "0000000", 8);                  // devmajor[8]
  std::memcpy(h.data() + 337, "0000000", 8);                  // devminor[8]
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h.data() + 148, 8, "%06o", sum);  // six digits, NUL, then the space kept
  h[155] = ' ';
  return h;
}

bool ValidName(std::string_view name) {
  return !name.empty() && name.size() <= 100 && name.find('\0') == std::string_view::npos;
}

}  // namespace

StatusOr<std::string> Write(const std::vector<File>& files) {
  std::string out;
  for (const File& f : files) {
    if (!ValidName(f.name)) return InvalidArgumentError("tar: bad member name '" + f.name + "'");
    if (f.data.size() > kMaxSize) return InvalidArgumentError("tar: " + f.name + " is too large");
    out += Header(f.name, f.data.size());
    out += f.data;
    out.append((kBlock - f.data.size() % kBlock) % kBlock, '\0');
  }
  out.append(2 * kBlock, '\0');
  return out;
}

StatusOr<std::vector<File>> Read(std::string_view a, size_t max_files) {
  std::vector<File> files;
  size_t off = 0;
  for (;;) {
    if (a.size() - off < kBlock)
      return DataLossError("tar: truncated at byte " + std::to_string(off));
    const std::string_view h = a.substr(off, kBlock);
    if (h.find_first_not_of('\0') == std::string_view::npos) {
      // The end: two zero blocks and nothing after them.
      if (a.size() - off != 2 * kBlock ||
          a.substr(off + kBlock).find_first_not_of('\0') != std::string_view::npos)
        return DataLossError("tar: bytes after the end marker at byte " + std::to_string(off));
      return files;
    }
    if (files.size() == max_files)
      return DataLossError("tar: more than " + std::to_string(max_files) + " members");
    const std::string_view name = h.substr(0, std::min<size_t>(h.find('\0'), 100));
    uint64_t size = 0;
    bool digits = true;
    for (size_t i = 124; i < 135; ++i) {
      if (h[i] < '0' || h[i] > '7') digits = false;
      else size = size * 8 + static_cast<uint64_t>(h[i] - '0');
    }
    const std::string where = "tar: member " + std::to_string(files.size()) + " at byte " +
                              std::to_string(off);
    if (!digits || !ValidName(name) || h != Header(name, size))
      return DataLossError(where + ": not a canonical annals header");
    off += kBlock;
    const uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    if (a.size() - off < padded) return DataLossError(where + " (" + std::string(name) + "): truncated");
    if (a.substr(off + size, padded - size).find_first_not_of('\0') != std::string_view::npos)
      return DataLossError(where + " (" + std::string(name) + "): padding is not zero");
    files.push_back({std::string(name), std::string(a.substr(off, size))});
    off += padded;
  }
}

}  // namespace annals::tar
