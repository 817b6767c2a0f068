// The Classifier gRPC service on the callback API: one reactor per stream, no
// thread held per stream.
#pragma once

#include <memory>

#include "server/model_repository.h"
#include "server/session.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::server {

class ClassifierService final : public v1::Classifier::CallbackService {
 public:
  // The repository must outlive the service.
  explicit ClassifierService(const ModelRepository* repository, SessionLimits limits = {});

  grpc::ServerBidiReactor<v1::StreamClassifyRequest, v1::StreamClassifyResponse>* StreamClassify(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::GetModelResponse* response) override;

 private:
  const ModelRepository* repository_;
  SessionLimits limits_;
};

}  // namespace wavepool::server
