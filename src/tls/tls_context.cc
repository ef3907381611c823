#include "tls/tls_context.h"

#include <openssl/x509.h>

namespace annals::tls {

namespace ssl = boost::asio::ssl;

StatusOr<std::shared_ptr<ssl::context>> MakeServerContext(const TlsFiles& o) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(o.cert, ec);
  if (ec) return InvalidArgumentError("TLS certificate " + o.cert + ": " + ec.message());
  ctx->use_private_key_file(o.key, ssl::context::pem, ec);
  if (ec) return InvalidArgumentError("TLS key " + o.key + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1)
    return InvalidArgumentError("TLS key " + o.key + " does not match " + o.cert);
  if (!o.client_ca.empty()) {
    ctx->load_verify_file(o.client_ca, ec);
    if (ec) return InvalidArgumentError("client CA " + o.client_ca + ": " + ec.message());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca.c_str());
    if (names) SSL_CTX_set_client_CA_list(native, names);
    ctx->set_verify_mode(o.require_client_cert ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                                               : ssl::verify_peer);
    static const unsigned char kSid[] = "annals";
    SSL_CTX_set_session_id_context(native, kSid, sizeof kSid - 1);
  }
  return ctx;
}

void PeerIdentity(SSL* ssl, std::string* user, std::vector<std::string>* groups) {
  if (SSL_get_verify_result(ssl) != X509_V_OK) return;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return;
  X509_NAME* name = X509_get_subject_name(cert);
  auto text = [&](int pos) {
    ASN1_STRING* d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, pos));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, d);
    std::string out = n > 0 ? std::string(reinterpret_cast<char*>(utf8), n) : "";
    OPENSSL_free(utf8);
    return out;
  };
  int cn = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (cn >= 0) *user = text(cn);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) >= 0;)
    groups->push_back(text(i));
  X509_free(cert);
}

}  // namespace annals::tls
