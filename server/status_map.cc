#include "server/status_map.h"

#include <string>

namespace wavepool::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  // absl and gRPC share the canonical code numbering (0..16), so the cast is exact.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace wavepool::server
