#include "quic/datagram_batch.h"

#include <cerrno>

namespace snigate::quic {

DatagramBatch::DatagramBatch() : buffer_(kSize * kMaxDatagram) {}

std::size_t DatagramBatch::receive(int fd, std::error_code& error) {
  for (std::size_t i = 0; i < kSize; ++i) {
    iov_[i] = {buffer_.data() + i * kMaxDatagram, kMaxDatagram};
    headers_[i] = {};
    headers_[i].msg_hdr.msg_iov = &iov_[i];
    headers_[i].msg_hdr.msg_iovlen = 1;
    headers_[i].msg_hdr.msg_name = sources_[i].data();
    headers_[i].msg_hdr.msg_namelen = static_cast<socklen_t>(sources_[i].capacity());
  }
  int n;
  do {
    n = ::recvmmsg(fd, headers_.data(), kSize, MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) error = {errno, std::system_category()};
    return 0;
  }
  for (int i = 0; i < n; ++i) sources_[i].resize(headers_[i].msg_hdr.msg_namelen);
  return static_cast<std::size_t>(n);
}

std::span<const std::uint8_t> DatagramBatch::datagram(std::size_t i) const {
  return {buffer_.data() + i * kMaxDatagram, headers_[i].msg_len};
}

}  // namespace snigate::quic
