// Model::Run on a digit-sized 2-D conv + pool network (input [1, 40, 96]:
// conv 3x3x16, relu, max-pool 2x2, conv 3x3x32, relu, max-pool 2x2,
// conv 3x3x64, relu, global average, dense 11) at batch 1, 8 and 64, with
// seeded He-uniform weights. Reports windows/s (items_per_second).
//
//   build/bench/bench_nn --benchmark_min_time=2
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "nn/model.h"
#include "nn/spec.h"

namespace {

using wavepool::nn::Model;
using wavepool::nn::ModelSpec;

ModelSpec DigitSpec() {
  ModelSpec s;
  s.set_name("bench-digits");
  s.set_version(1);
  s.set_kind(wavepool::v1::FIXED_WINDOWS);
  s.set_sample_rate_hz(8000);
  auto* fe = s.mutable_front_end();
  fe->mutable_stft()->set_frame_length(240);
  fe->mutable_stft()->set_frame_hop(80);
  fe->mutable_stft()->set_fft_size(256);
  fe->mutable_stft()->set_window(wavepool::v1::HANN);
  fe->mutable_mel()->set_num_bands(40);
  fe->mutable_mel()->set_f_min_hz(20);
  fe->mutable_mel()->set_f_max_hz(4000);
  fe->set_layout(wavepool::v1::MEL_AS_FREQ);
  // 96 frames: 240 + 95 * 80 samples.
  s.mutable_windowing()->set_length_samples(240 + 95 * 80);
  s.mutable_windowing()->set_hop_samples(2000);
  const auto conv = [&](const char* name, uint32_t out) {
    auto* l = s.add_layers();
    l->set_name(name);
    auto* c = l->mutable_conv2d();
    c->set_out_channels(out);
    c->set_kernel_time(3);
    c->set_kernel_freq(3);
  };
  const auto relu = [&](const char* name) {
    auto* l = s.add_layers();
    l->set_name(name);
    l->mutable_relu();
  };
  const auto pool = [&](const char* name) {
    auto* l = s.add_layers();
    l->set_name(name);
    l->mutable_max_pool2d()->set_kernel_time(2);
    l->mutable_max_pool2d()->set_kernel_freq(2);
  };
  conv("conv1", 16), relu("relu1"), pool("pool1");
  conv("conv2", 32), relu("relu2"), pool("pool2");
  conv("conv3", 64), relu("relu3");
  auto* gap = s.add_layers();
  gap->set_name("gap");
  gap->mutable_global_avg_pool();
  auto* fc = s.add_layers();
  fc->set_name("fc");
  fc->mutable_dense()->set_out_features(11);
  for (int i = 0; i < 11; ++i) s.add_labels(i < 10 ? std::to_string(i) : "_background_");
  return s;
}

std::shared_ptr<const Model> DigitModel() {
  static const std::shared_ptr<const Model> model = [] {
    const ModelSpec spec = DigitSpec();
    auto weights = wavepool::nn::InitWeights(spec, 1);
    if (!weights.ok()) {
      std::fprintf(stderr, "InitWeights: %s\n", std::string(weights.status().message()).c_str());
      std::abort();
    }
    auto m = Model::Create(spec, *weights);
    if (!m.ok()) {
      std::fprintf(stderr, "Create: %s\n", std::string(m.status().message()).c_str());
      std::abort();
    }
    return *m;
  }();
  return model;
}

// state.range(1), the ConvPath: 0 = the served path (the model's choice: oneDNN
// segments where oneDNN has JIT kernels), 1 = im2col + OpenBLAS sgemm, 2 = the
// reference direct-loop convolution (nn::Conv2d), for the ratios in one run.
void BM_DigitModelRun(benchmark::State& state) {
  const auto model = DigitModel();
  const int batch = static_cast<int>(state.range(0));
  constexpr wavepool::nn::ConvPath kPaths[] = {wavepool::nn::ConvPath::kChosen, wavepool::nn::ConvPath::kGemm,
                                               wavepool::nn::ConvPath::kReference};
  wavepool::nn::Workspace ws(*model, batch, kPaths[state.range(1)]);
  std::vector<float> input(model->input_size() * batch);
  std::vector<float> output(model->output_size() * batch);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : input) v = normal(rng);
  for (auto _ : state) {
    model->Run(input.data(), batch, output.data(), ws);
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["windows/s"] =
      benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_DigitModelRun)
    ->ArgNames({"batch", "conv_path"})
    ->ArgsProduct({{1, 8, 64}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
