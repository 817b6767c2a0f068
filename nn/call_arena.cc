#include "nn/call_arena.h"

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

namespace wavepool::nn {
namespace {

constexpr int kNoSlice = -1;    // this thread has not asked for one yet
constexpr int kNoneLeft = -2;   // it asked and every slice was taken: malloc

// Set once the region is reserved; Release reads it on every operator delete.
std::atomic<unsigned char*> g_base{nullptr};

// The reserved region: kSlices slices side by side, so any thread can tell an
// arena block by its address alone and find the slice it belongs to.
struct Region {
  unsigned char* base = nullptr;
  // Blocks handed out by slice s and not yet released (released from any thread).
  std::array<std::atomic<long>, CallArena::kSlices> live{};
  std::mutex mu;  // taken once per thread lifetime: to get or return a slice
  std::array<int, CallArena::kSlices> free_slices{};
  size_t free_count = 0;
  size_t next_unused = 0;

  Region() {
    void* p = mmap(nullptr, CallArena::kSlices * CallArena::kSliceBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) base = static_cast<unsigned char*>(p);
    g_base.store(base, std::memory_order_relaxed);
  }
};

Region& TheRegion() {
  // Never destroyed: blocks may be released while the process exits.
  static Region* region = new Region;
  return *region;
}

int TakeSlice() {
  Region& r = TheRegion();
  if (r.base == nullptr) return kNoneLeft;
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.free_count > 0) return r.free_slices[--r.free_count];
  if (r.next_unused < CallArena::kSlices) return static_cast<int>(r.next_unused++);
  return kNoneLeft;
}

// A slice whose blocks are all released goes back for another thread; one
// still holding blocks is left out of use for good (its bytes stay reserved).
void ReturnSlice(int slice) {
  Region& r = TheRegion();
  if (r.live[static_cast<size_t>(slice)].load(std::memory_order_acquire) != 0) return;
  std::lock_guard<std::mutex> lock(r.mu);
  r.free_slices[r.free_count++] = slice;
}

// Trivially destructible thread state, read on every operator new.
constinit thread_local int t_depth = 0;   // open Scopes
constinit thread_local size_t t_used = 0;  // bytes bumped in this thread's slice
constinit thread_local long t_heap_allocations = 0;

// The thread's slice, given back when the thread exits.
struct SliceOwner {
  int slice = kNoSlice;
  ~SliceOwner() {
    if (slice >= 0) ReturnSlice(slice);
  }
};
thread_local SliceOwner t_owner;

}  // namespace

CallArena::Scope::Scope() noexcept {
  // Before t_depth rises: the first touch of t_owner registers its destructor,
  // which may allocate, and that block must come from malloc.
  if (t_owner.slice == kNoSlice) t_owner.slice = TakeSlice();
  ++t_depth;
}

CallArena::Scope::~Scope() {
  if (--t_depth > 0 || t_owner.slice < 0) return;
  // Rewind only when no block of the slice is held (by this thread or another).
  if (TheRegion().live[static_cast<size_t>(t_owner.slice)].load(std::memory_order_acquire) == 0) {
    t_used = 0;
  }
}

void* CallArena::Allocate(size_t n) noexcept {
  if (t_depth == 0) return nullptr;
  const int slice = t_owner.slice;
  if (slice < 0) return nullptr;
  const size_t size = n == 0 ? kAlign : (n + kAlign - 1) / kAlign * kAlign;
  if (size > kSliceBytes - t_used) return nullptr;
  unsigned char* base = g_base.load(std::memory_order_relaxed);
  void* p = base + static_cast<size_t>(slice) * kSliceBytes + t_used;
  t_used += size;
  TheRegion().live[static_cast<size_t>(slice)].fetch_add(1, std::memory_order_relaxed);
  return p;
}

bool CallArena::Release(void* p) noexcept {
  unsigned char* base = g_base.load(std::memory_order_relaxed);
  if (base == nullptr) return false;
  const auto at = reinterpret_cast<uintptr_t>(p), begin = reinterpret_cast<uintptr_t>(base);
  if (at < begin || at - begin >= kSlices * kSliceBytes) return false;
  // Release: the owner's rewind (acquire) sees everything done with the block.
  TheRegion().live[(at - begin) / kSliceBytes].fetch_sub(1, std::memory_order_release);
  return true;
}

void CallArena::CountHeapAllocation() noexcept { ++t_heap_allocations; }

long HeapAllocationsOnThisThread() noexcept { return t_heap_allocations; }

}  // namespace wavepool::nn
