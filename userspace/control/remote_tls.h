#pragma once
// TLS for the remote ban channel (OpenSSL through Boost.Asio), on top of the token's HMAC:
// the edge shows its certificate and requires one from each peer, signed by the CA it names
// (mutual TLS), so ban bodies and their log lines no longer cross the wire in the clear and
// a peer needs a certificate as well as the token.
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

namespace snigate::control {

struct RemoteTlsFiles {
  std::string cert;  // PEM certificate (chain) shown to the other side
  std::string key;   // its private key, PEM
  std::string ca;    // PEM CA the other side's certificate must be signed by
  bool enabled() const { return !cert.empty(); }
};

// nullptr with `error` set (naming the file) when a file cannot be loaded or the key does not
// match the certificate. TLS 1.2 or newer.
std::shared_ptr<boost::asio::ssl::context> make_edge_tls(const RemoteTlsFiles& files,
                                                         std::string& error);
std::shared_ptr<boost::asio::ssl::context> make_watcher_tls(const RemoteTlsFiles& files,
                                                            std::string& error);

}  // namespace snigate::control
