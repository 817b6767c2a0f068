// A small fixed pool for data-parallel loops in training. Work is split into
// fixed contiguous shards (shard t of T always gets the same items), so results
// never depend on scheduling.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace wavepool::nn {

class ThreadPool {
 public:
  // threads >= 1; the calling thread is one of them.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Runs fn(shard, begin, end) for the shards of [0, n): shard t covers
  // [t n / T, (t + 1) n / T). Returns when all shards are done.
  void ParallelFor(int n, const std::function<void(int shard, int begin, int end)>& fn);

 private:
  void Worker(int index);
  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(int, int, int)>* job_ = nullptr;
  int job_n_ = 0;
  unsigned generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace wavepool::nn
