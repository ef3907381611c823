// Server-side TLS for every listener (HTTP and the TCP connector): the
// OpenSSL context from PEM files (TLS 1.2 and later only; client
// certificates verified against a CA bundle), and the identity a verified
// client certificate carries (CN = user, each O = a group, as Kubernetes
// reads them). docs/security.md.
//
// A context is immutable once made; swap in a new one to reload.
#ifndef ANNALS_TLS_TLS_CONTEXT_H_
#define ANNALS_TLS_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace annals::tls {

struct TlsFiles {
  std::string cert, key;   // PEM certificate chain and its private key
  std::string client_ca;   // PEM bundle; "" = no client certificates asked for
  // With client_ca: fail the handshake without a certificate too (a
  // listener with no other way to authenticate). Otherwise none is allowed
  // and a bad one (another CA, expired) fails the handshake.
  bool require_client_cert = false;
};

StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeServerContext(const TlsFiles& files);

// CN and every O of the peer's certificate, if it was verified; else
// leaves both empty.
void PeerIdentity(SSL* ssl, std::string* user, std::vector<std::string>* groups);

}  // namespace annals::tls

#endif  // ANNALS_TLS_TLS_CONTEXT_H_
