#include "server/batcher.h"

#include <algorithm>
#include <cstring>

namespace wavepool::server {

ModelQueue::ModelQueue(Batcher* batcher, std::shared_ptr<const nn::Model> model,
                       BatchOptions options, std::function<void(const BatchStats&)> observer,
                       int workers)
    : batcher_(batcher),
      model_(std::move(model)),
      options_(options),
      observer_(std::move(observer)),
      workers_(static_cast<size_t>(workers)),
      ring_(static_cast<size_t>(std::max(options.max_batch_size, 1)) * 4) {
  options_.max_batch_size = std::clamp(options_.max_batch_size, 1, 4096);
  options_.max_queue_delay_ms = std::max(options_.max_queue_delay_ms, 0.0);
}

ModelQueue::~ModelQueue() { batcher_->Remove(this); }

void ModelQueue::Push(const Job& job) {
  if (count_ == ring_.size()) {
    // Grow to the high-water mark: unroll the ring into a larger one.
    std::vector<Job> bigger(ring_.size() * 2);
    for (size_t i = 0; i < count_; ++i) bigger[i] = ring_[(head_ + i) % ring_.size()];
    ring_.swap(bigger);
    head_ = 0;
  }
  ring_[(head_ + count_) % ring_.size()] = job;
  ++count_;
}

ModelQueue::Job ModelQueue::Pop() {
  Job job = ring_[head_];
  head_ = (head_ + 1) % ring_.size();
  --count_;
  return job;
}

Batcher::Batcher(int workers) {
  if (workers <= 0) workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { Work(i); });
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::shared_ptr<ModelQueue> Batcher::AddModel(std::shared_ptr<const nn::Model> model,
                                              BatchOptions options,
                                              std::function<void(const BatchStats&)> observer) {
  auto queue = std::shared_ptr<ModelQueue>(new ModelQueue(
      this, std::move(model), options, std::move(observer), static_cast<int>(threads_.size())));
  std::lock_guard<std::mutex> lock(mu_);
  queues_.push_back(queue.get());
  return queue;
}

void Batcher::Remove(ModelQueue* queue) {
  std::lock_guard<std::mutex> lock(mu_);
  queues_.erase(std::remove(queues_.begin(), queues_.end(), queue), queues_.end());
}

void Batcher::Submit(ModelQueue& queue, const float* inputs, float* outputs, size_t count,
                     BatchCompletion* done) {
  if (count == 0) return;
  const size_t in = queue.model().input_size(), out = queue.model().output_size();
  done->remaining_.store(static_cast<int>(count), std::memory_order_relaxed);
  const Clock::time_point now = Clock::now();
  bool was_empty, full;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_empty = queue.size() == 0;
    for (size_t i = 0; i < count; ++i) {
      queue.Push({inputs + i * in, outputs + i * out, done, now});
    }
    full = queue.size() >= static_cast<size_t>(queue.options().max_batch_size);
  }
  // A full batch can go at once. A window that starts a queue sets a new
  // deadline, so a worker must wake to time it. Otherwise no wake-up: the
  // queue's front, and so every sleeping worker's deadline, is unchanged, and
  // a busy worker looks at the queues before it sleeps again. (Waking a worker
  // on every submission only to see it go back to sleep cost a context switch
  // per message: at 5,000 ECG streams the scheduler was a fifth of the
  // server's CPU.)
  if (full) {
    if (count > 1) {
      cv_.notify_all();
    } else {
      cv_.notify_one();
    }
  } else if (was_empty) {
    cv_.notify_one();
  }
}

ModelQueue* Batcher::Ready(Clock::time_point now, Clock::time_point* wake) const {
  ModelQueue* best = nullptr;
  *wake = Clock::time_point::max();
  for (ModelQueue* q : queues_) {
    if (q->size() == 0) continue;
    const auto delay = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double, std::milli>(q->options().max_queue_delay_ms));
    const Clock::time_point due = q->Front().enqueued + delay;
    const bool ready = stopping_ || due <= now ||
                       q->size() >= static_cast<size_t>(q->options().max_batch_size);
    if (ready) {
      // Oldest first, so no model starves another.
      if (best == nullptr || q->Front().enqueued < best->Front().enqueued) best = q;
    } else {
      *wake = std::min(*wake, due);
    }
  }
  return best;
}

void Batcher::Work(int worker) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    Clock::time_point wake;
    ModelQueue* q = Ready(Clock::now(), &wake);
    if (q == nullptr) {
      if (stopping_) return;  // stopping with nothing queued anywhere
      if (wake == Clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, wake);
      }
      continue;
    }
    ModelQueue::WorkerState& w = q->workers_[static_cast<size_t>(worker)];
    const size_t max_batch = static_cast<size_t>(q->options().max_batch_size);
    const size_t n = std::min(q->size(), max_batch);
    if (w.jobs.capacity() < max_batch) w.jobs.reserve(max_batch);  // first use only
    w.jobs.resize(n);
    for (size_t i = 0; i < n; ++i) w.jobs[i] = q->Pop();
    const bool more = q->size() > 0;
    lock.unlock();
    if (more) cv_.notify_one();  // another worker can take the rest

    const nn::Model& model = q->model();
    const size_t in = model.input_size(), out = model.output_size();
    if (!w.workspace) {
      w.workspace = std::make_unique<nn::Workspace>(model, static_cast<int>(max_batch));
      w.input.resize(max_batch * in);
      w.output.resize(max_batch * out);
      w.delays.resize(max_batch);
    }
    const Clock::time_point start = Clock::now();
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(w.input.data() + i * in, w.jobs[i].input, in * sizeof(float));
      w.delays[i] = std::chrono::duration<double>(start - w.jobs[i].enqueued).count();
    }
    model.Run(w.input.data(), static_cast<int>(n), w.output.data(), *w.workspace);
    const double inference_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (q->observer_) {
      q->observer_(BatchStats{static_cast<int>(n), inference_s,
                              std::span<const double>(w.delays.data(), n)});
    }
    // Completions last: the last one may free its stream, and with it the
    // queue (of an unloaded model) whose buffers this worker was using.
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(w.jobs[i].output, w.output.data() + i * out, out * sizeof(float));
    }
    for (size_t i = 0; i < n; ++i) {
      BatchCompletion* done = w.jobs[i].done;
      if (done->remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) done->OnScored();
    }
    lock.lock();
  }
}

}  // namespace wavepool::server
