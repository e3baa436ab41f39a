#include "control/remote_tls.h"

#include <boost/asio/ssl/verify_mode.hpp>

namespace snigate::control {

namespace ssl = boost::asio::ssl;

namespace {

std::shared_ptr<ssl::context> make(const RemoteTlsFiles& files, ssl::context::method method,
                                   std::string& error) {
  auto ctx = std::make_shared<ssl::context>(method);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  auto load = [&](const char* what, const std::string& file, auto&& use) {
    boost::system::error_code ec;
    if (error.empty()) use(ec);
    if (ec) error = std::string("cannot load the TLS ") + what + " " + file + ": " + ec.message();
  };
  load("certificate", files.cert, [&](auto& ec) { ctx->use_certificate_chain_file(files.cert, ec); });
  load("private key", files.key, [&](auto& ec) { ctx->use_private_key_file(files.key, ssl::context::pem, ec); });
  load("CA", files.ca, [&](auto& ec) { ctx->load_verify_file(files.ca, ec); });
  if (!error.empty()) return nullptr;
  return ctx;
}

}  // namespace

std::shared_ptr<ssl::context> make_edge_tls(const RemoteTlsFiles& files, std::string& error) {
  auto ctx = make(files, ssl::context::tls_server, error);
  // A peer without a certificate from our CA does not get past the handshake.
  if (ctx) ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

std::shared_ptr<ssl::context> make_watcher_tls(const RemoteTlsFiles& files, std::string& error) {
  auto ctx = make(files, ssl::context::tls_client, error);
  if (ctx) ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace snigate::control
