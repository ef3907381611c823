#include "ingest/cloudtrail_digest.h"

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include <cctype>
#include <memory>

#include "common/bytes.h"
#include "common/sha256.h"
#include "json/json_parse.h"

namespace annals::ingest {

namespace {

using simdjson::dom::element;

Status Bad(std::string_view why) { return InvalidArgumentError("digest: " + std::string(why)); }

// A required string member.
Status Need(const element& o, const char* key, std::string* out) {
  std::string_view v;
  if (o[key].get_string().get(v) != simdjson::SUCCESS || v.empty()) return Bad(std::string("no ") + key);
  *out = std::string(v);
  return OkStatus();
}

// A string member that is null in the first digest of a chain.
Status Nullable(const element& o, const char* key, std::optional<std::string>* out) {
  element v;
  if (o[key].get(v) != simdjson::SUCCESS) return Bad(std::string("no ") + key);
  if (v.is_null()) return OkStatus();
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return Bad(std::string(key) + " is not a string or null");
  *out = std::string(s);
  return OkStatus();
}

}  // namespace

StatusOr<CloudTrailDigest> ParseCloudTrailDigest(std::string_view json) {
  simdjson::dom::parser& parser = json_util::JsonParser();
  element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc))
    return Bad(json_util::JsonErrorMessage(err));
  if (!doc.is_object()) return Bad("not a JSON object");
  RETURN_IF_ERROR(json_util::CheckUniqueKeys(doc, "digest"));
  CloudTrailDigest d;
  RETURN_IF_ERROR(Need(doc, "awsAccountId", &d.account));
  RETURN_IF_ERROR(Need(doc, "digestStartTime", &d.start));
  RETURN_IF_ERROR(Need(doc, "digestEndTime", &d.end));
  RETURN_IF_ERROR(Need(doc, "digestS3Bucket", &d.bucket));
  RETURN_IF_ERROR(Need(doc, "digestS3Object", &d.object));
  RETURN_IF_ERROR(Need(doc, "digestPublicKeyFingerprint", &d.fingerprint));
  RETURN_IF_ERROR(Need(doc, "digestSignatureAlgorithm", &d.algorithm));
  if (d.algorithm != "SHA256withRSA") return Bad("signature algorithm " + d.algorithm + " is not SHA256withRSA");
  RETURN_IF_ERROR(Nullable(doc, "previousDigestS3Bucket", &d.prev_bucket));
  RETURN_IF_ERROR(Nullable(doc, "previousDigestS3Object", &d.prev_object));
  RETURN_IF_ERROR(Nullable(doc, "previousDigestHashValue", &d.prev_hash));
  RETURN_IF_ERROR(Nullable(doc, "previousDigestSignature", &d.prev_signature));
  simdjson::dom::array logs;
  if (doc["logFiles"].get_array().get(logs) != simdjson::SUCCESS) return Bad("logFiles is not an array");
  size_t k = 0;
  for (element f : logs) {
    const std::string at = "logFiles[" + std::to_string(k++) + "]";
    if (!f.is_object()) return Bad(at + " is not an object");
    DigestLogFile lf;
    std::string algorithm;
    for (auto [key, out] : {std::pair{"s3Bucket", &lf.bucket}, std::pair{"s3Object", &lf.object},
                            std::pair{"hashValue", &lf.hash}, std::pair{"hashAlgorithm", &algorithm}}) {
      if (Status st = Need(f, key, out); !st.ok()) return Bad(at + ": no " + key);
    }
    if (algorithm != "SHA-256") return Bad(at + ": hash algorithm " + algorithm + " is not SHA-256");
    lf.hash = AsciiLower(lf.hash);
    if (lf.hash.size() != 64 || !HexDecode(lf.hash)) return Bad(at + ": hashValue is not a hex SHA-256");
    d.logs.push_back(std::move(lf));
  }
  d.sha256 = HexEncode(HashBytes(Sha256(json)));
  return d;
}

std::string DigestStringToSign(const CloudTrailDigest& d) {
  return d.end + "\n" + d.bucket + "/" + d.object + "\n" + d.sha256 + "\n" + d.prev_signature.value_or("null");
}

StatusOr<std::map<std::string, std::string>> ParseCloudTrailPublicKeys(std::string_view json) {
  simdjson::dom::parser& parser = json_util::JsonParser();
  element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc))
    return InvalidArgumentError("public keys: " + json_util::JsonErrorMessage(err));
  simdjson::dom::array list;
  if (doc["PublicKeyList"].get_array().get(list) != simdjson::SUCCESS)
    return InvalidArgumentError("public keys: no PublicKeyList (the output of aws cloudtrail list-public-keys)");
  std::map<std::string, std::string> keys;
  size_t k = 0;
  for (element e : list) {
    const std::string at = "public keys: PublicKeyList[" + std::to_string(k++) + "]";
    std::string_view value, fingerprint;
    if (e["Value"].get_string().get(value) != simdjson::SUCCESS ||
        e["Fingerprint"].get_string().get(fingerprint) != simdjson::SUCCESS)
      return InvalidArgumentError(at + ": needs Value and Fingerprint");
    auto der = Base64Decode(value);
    if (!der || der->empty()) return InvalidArgumentError(at + ": Value is not base64");
    keys[AsciiLower(std::string(fingerprint))] = std::move(*der);
  }
  return keys;
}

Status VerifyDigestSignature(const CloudTrailDigest& d, std::string_view signature_hex,
                             const std::map<std::string, std::string>& keys) {
  auto it = keys.find(AsciiLower(d.fingerprint));
  if (it == keys.end()) return InvalidArgumentError("public key " + d.fingerprint + " not found");
  auto sig = HexDecode(AsciiLower(std::string(signature_hex)));
  if (!sig || sig->empty()) return InvalidArgumentError("the signature is not hex");
  // PKCS#1 RSAPublicKey, else SubjectPublicKeyInfo.
  const auto* p = reinterpret_cast<const unsigned char*>(it->second.data());
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, static_cast<long>(it->second.size())), EVP_PKEY_free);
  if (!key) {
    p = reinterpret_cast<const unsigned char*>(it->second.data());
    key.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(it->second.size())));
  }
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    return InvalidArgumentError("public key " + d.fingerprint + " is not an RSA key");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
    return InternalError("OpenSSL: cannot set up RSA verification");
  const std::string msg = DigestStringToSign(d);
  const int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                                  reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
  if (ok != 1) return InvalidArgumentError("signature does not verify");
  return OkStatus();
}

}  // namespace annals::ingest
