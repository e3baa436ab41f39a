// UdpFlowForwarder in a build without bpf/ (SNIGATE_BPF=OFF): open() says why, so the
// daemon forwards in userspace; no forwarder ever exists to call the rest.
#include "udp_flow/udp_flow_forwarder.h"

namespace snigate::udp_flow {

std::unique_ptr<UdpFlowForwarder> UdpFlowForwarder::open(const std::vector<std::string>&,
                                                         std::string& why_not) {
  why_not = "snigate was built without its BPF programs (SNIGATE_BPF=OFF)";
  return nullptr;
}

UdpFlowForwarder::~UdpFlowForwarder() = default;
bool UdpFlowForwarder::add(const UdpFlowSpec&, std::string& why_not) {
  why_not = "no kernel path in this build";
  return false;
}
void UdpFlowForwarder::remove(const UdpFlowSpec&) {}
std::optional<FlowCounters> UdpFlowForwarder::counters(const UdpFlowSpec&) const { return {}; }
int UdpFlowForwarder::prog_fd() const { return -1; }

}  // namespace snigate::udp_flow
