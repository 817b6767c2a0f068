// The batcher against the model run directly, one window at a time: same
// scores, every completion exactly once, batches formed when windows wait.
#include "server/batcher.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nn/spec.h"
#include "server_test_util.h"

namespace wavepool::server {
namespace {

std::shared_ptr<const nn::Model> SmallModel() {
  absl::StatusOr<nn::ModelSpec> spec = nn::ParseSpecJson(testing::SmallSpecJson("small", 1));
  EXPECT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<nn::TensorMap> weights = nn::InitWeights(*spec, 5);
  EXPECT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<std::shared_ptr<const nn::Model>> model = nn::Model::Create(*spec, *weights);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

// One submitter: its windows, its scores, and a flag set by the completion.
struct Waiter : BatchCompletion {
  std::vector<float> inputs, outputs;
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  void OnScored() override {
    std::lock_guard<std::mutex> lock(mu);
    ++calls;
    cv.notify_all();
  }
  bool Wait(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return calls > 0; });
  }
};

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(Batcher, ScoresEqualTheModelRunOneWindowAtATime) {
  const std::shared_ptr<const nn::Model> model = SmallModel();
  const size_t in = model->input_size(), out = model->output_size();
  Batcher batcher(2);
  std::mutex mu;
  std::vector<int> sizes;
  auto queue = batcher.AddModel(model, {8, 20}, [&](const BatchStats& b) {
    std::lock_guard<std::mutex> lock(mu);
    sizes.push_back(b.size);
    EXPECT_EQ(b.queue_delays_s.size(), static_cast<size_t>(b.size));
  });
  constexpr int kSubmitters = 10;
  std::vector<Waiter> waiters(kSubmitters);
  std::vector<std::thread> threads;
  for (int s = 0; s < kSubmitters; ++s) {
    const size_t windows = 1 + static_cast<size_t>(s % 4);
    waiters[s].inputs = Random(windows * in, 100 + s);
    waiters[s].outputs.assign(windows * out, -1.0f);
    threads.emplace_back([&, s, windows] {
      batcher.Submit(*queue, waiters[s].inputs.data(), waiters[s].outputs.data(), windows,
                     &waiters[s]);
    });
  }
  for (std::thread& t : threads) t.join();
  nn::Workspace ws(*model, 1);
  std::vector<float> want(out);
  int total = 0;
  for (int s = 0; s < kSubmitters; ++s) {
    ASSERT_TRUE(waiters[s].Wait(std::chrono::seconds(30))) << "submitter " << s;
    const size_t windows = waiters[s].inputs.size() / in;
    total += static_cast<int>(windows);
    for (size_t w = 0; w < windows; ++w) {
      model->Run(waiters[s].inputs.data() + w * in, 1, want.data(), ws);
      for (size_t k = 0; k < out; ++k) {
        EXPECT_NEAR(waiters[s].outputs[w * out + k], want[k], 1e-5f)
            << "submitter " << s << " window " << w << " output " << k;
      }
    }
  }
  // Every completion exactly once, every window in exactly one batch.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int batched = 0, largest = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (int n : sizes) {
      batched += n;
      largest = std::max(largest, n);
      EXPECT_LE(n, 8);
    }
  }
  EXPECT_EQ(batched, total);
  for (Waiter& w : waiters) EXPECT_EQ(w.calls, 1);
  // 25 windows submitted at once with a 20 ms wait cannot all go alone.
  EXPECT_GT(largest, 1);
}

TEST(Batcher, MaxBatchOneRunsEveryWindowAlone) {
  const std::shared_ptr<const nn::Model> model = SmallModel();
  Batcher batcher(1);
  std::atomic<int> batches{0}, over{0};
  auto queue = batcher.AddModel(model, {1, 50}, [&](const BatchStats& b) {
    ++batches;
    if (b.size != 1) ++over;
  });
  Waiter w;
  w.inputs = Random(5 * model->input_size(), 7);
  w.outputs.resize(5 * model->output_size());
  batcher.Submit(*queue, w.inputs.data(), w.outputs.data(), 5, &w);
  ASSERT_TRUE(w.Wait(std::chrono::seconds(30)));
  EXPECT_EQ(batches.load(), 5);
  EXPECT_EQ(over.load(), 0);
}

TEST(Batcher, AQueueDroppedWhileOthersRunIsSafe) {
  const std::shared_ptr<const nn::Model> model = SmallModel();
  Batcher batcher(2);
  auto keep = batcher.AddModel(model, {4, 1});
  for (int round = 0; round < 20; ++round) {
    auto transient = batcher.AddModel(model, {4, 1});
    Waiter a, b;
    a.inputs = Random(3 * model->input_size(), round);
    a.outputs.resize(3 * model->output_size());
    b.inputs = a.inputs;
    b.outputs.resize(a.outputs.size());
    batcher.Submit(*transient, a.inputs.data(), a.outputs.data(), 3, &a);
    batcher.Submit(*keep, b.inputs.data(), b.outputs.data(), 3, &b);
    ASSERT_TRUE(a.Wait(std::chrono::seconds(30)));
    ASSERT_TRUE(b.Wait(std::chrono::seconds(30)));
    EXPECT_EQ(a.outputs, b.outputs);
    transient.reset();  // unloaded: leaves the batcher while `keep` serves on
  }
}

}  // namespace
}  // namespace wavepool::server
