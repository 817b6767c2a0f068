// Dynamic batching: the windows of many streams for one model version run as
// one batch. A batch leaves its queue when it is full (max_batch_size) or when
// its oldest window has waited max_queue_delay_ms, whichever comes first; a
// fixed pool of workers (one per core by default) runs the batches of every
// model. Each submission (all the windows one stream has ready) gets one
// completion call once all its windows are scored, so results go back to their
// streams in order.
//
// Cost per window: one copy of its input into the batch and of its scores out;
// no allocation (the queue's ring grows to its high-water mark, the per-worker
// batch buffers are made once) and no lock (one lock per submission and one
// per batch).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "nn/model.h"

namespace wavepool::server {

struct BatchOptions {
  int max_batch_size = 32;        // 1 = no batching
  double max_queue_delay_ms = 2;  // how long a window waits for company
};

// What one batch did, for metrics. queue_delays_s has one entry per window.
struct BatchStats {
  int size = 0;
  double inference_s = 0;
  std::span<const double> queue_delays_s;
};

// Receives the end of one submission. Called exactly once per Submit, on a
// worker thread, after every window's scores are written.
class BatchCompletion {
 public:
  virtual ~BatchCompletion() = default;
  virtual void OnScored() = 0;

 private:
  friend class Batcher;
  std::atomic<int> remaining_{0};
};

class Batcher;

// The queue of one model version. Made by Batcher::AddModel; it stays usable
// while anyone holds it (streams keep theirs after a model is unloaded).
class ModelQueue {
 public:
  ~ModelQueue();
  const nn::Model& model() const { return *model_; }
  const BatchOptions& options() const { return options_; }

 private:
  friend class Batcher;
  using Clock = std::chrono::steady_clock;
  struct Job {
    const float* input = nullptr;
    float* output = nullptr;
    BatchCompletion* done = nullptr;
    Clock::time_point enqueued;
  };
  // Per worker: a workspace and contiguous batch buffers, made on first use.
  struct WorkerState {
    std::unique_ptr<nn::Workspace> workspace;
    std::vector<float> input, output;
    std::vector<Job> jobs;
    std::vector<double> delays;
  };

  ModelQueue(Batcher* batcher, std::shared_ptr<const nn::Model> model, BatchOptions options,
             std::function<void(const BatchStats&)> observer, int workers);
  size_t size() const { return count_; }
  void Push(const Job& job);
  Job Pop();
  const Job& Front() const { return ring_[head_]; }

  Batcher* batcher_;
  std::shared_ptr<const nn::Model> model_;
  BatchOptions options_;
  std::function<void(const BatchStats&)> observer_;
  std::vector<WorkerState> workers_;
  // Guarded by the batcher's mutex.
  std::vector<Job> ring_;
  size_t head_ = 0, count_ = 0;
};

class Batcher {
 public:
  // workers <= 0: one per hardware thread.
  explicit Batcher(int workers);
  // Runs what is queued, then joins the workers.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  int workers() const { return static_cast<int>(threads_.size()); }

  // The observer (may be empty) is called once per batch on a worker thread.
  std::shared_ptr<ModelQueue> AddModel(std::shared_ptr<const nn::Model> model,
                                       BatchOptions options,
                                       std::function<void(const BatchStats&)> observer = {});

  // Queues `count` windows: inputs[i * input_size ...], scores written to
  // outputs[i * output_size ...]. Both stay valid and untouched until
  // done->OnScored(). count must be >= 1 and `done` must have nothing else in
  // flight.
  void Submit(ModelQueue& queue, const float* inputs, float* outputs, size_t count,
              BatchCompletion* done);

 private:
  friend class ModelQueue;
  using Clock = std::chrono::steady_clock;
  void Remove(ModelQueue* queue);
  void Work(int worker);
  // The queue whose batch should run now (full, or its oldest window is due),
  // or nullptr with *wake set to the earliest due time.
  ModelQueue* Ready(Clock::time_point now, Clock::time_point* wake) const;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ModelQueue*> queues_;  // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace wavepool::server
