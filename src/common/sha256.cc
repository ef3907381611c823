#include "common/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace annals {
namespace {

const EVP_MD* Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

struct CtxHolder {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~CtxHolder() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Hash Sha256Parts(std::initializer_list<std::string_view> parts) {
  thread_local CtxHolder holder;
  Hash out;
  EVP_DigestInit_ex(holder.ctx, Md(), nullptr);
  for (auto p : parts) EVP_DigestUpdate(holder.ctx, p.data(), p.size());
  unsigned int n = 0;
  EVP_DigestFinal_ex(holder.ctx, out.data(), &n);
  return out;
}

Hash Sha256(std::string_view data) { return Sha256Parts({data}); }

}  // namespace annals
