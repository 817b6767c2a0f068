// The one mapping from absl::Status (libraries) to grpc::Status (the edge).
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace wavepool::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace wavepool::server
