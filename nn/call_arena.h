// A per-thread bump arena for the heap blocks a library call makes and frees
// before it returns. oneDNN's execute builds its argument map and wraps its
// parallel loops in std::function: about a dozen small `operator new` blocks per
// primitive call, which its API gives no way to avoid. While a Scope is open on
// a thread, the replaced operator new (nn/operator_new.cc, linked into the
// binaries) takes those blocks from the thread's slice of one reserved region
// instead of malloc: a pointer bump, no lock, and the slice is rewound when the
// outermost Scope closes with every block released.
//
// Sound whatever the call does with its blocks: a block still held when the
// Scope closes (a cache filled on first use) only delays the rewind until it is
// released, from any thread; a slice that fills up, a thread beyond the
// region's slices or a failed reservation fall back to malloc. Without the
// replacement linked in, a Scope is two thread-local writes and nothing else.
#pragma once

#include <cstddef>

namespace wavepool::nn {

class CallArena {
 public:
  // 64 KiB per thread: oneDNN's bookkeeping for one call is under 1 KiB, so a
  // slice holds the blocks of many calls even when a rewind is held up.
  static constexpr size_t kSliceBytes = size_t{64} << 10;
  // Threads that can hold a slice at once (16 MiB of address space, reserved
  // but touched only as used); a thread's slice is recycled when it exits.
  static constexpr size_t kSlices = 256;
  // Blocks are aligned as operator new's are (__STDCPP_DEFAULT_NEW_ALIGNMENT__).
  static constexpr size_t kAlign = 16;

  // Routes this thread's operator new to its slice until destroyed. Nests.
  class Scope {
   public:
    Scope() noexcept;
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

  // For the replaced operator new: a block of n bytes from this thread's slice,
  // or nullptr (no Scope open, slice full, no slice) to fall back to malloc.
  static void* Allocate(size_t n) noexcept;
  // For the replaced operator delete: true if p is an arena block (of any
  // thread's slice) and is now released; false for any other pointer.
  static bool Release(void* p) noexcept;
  // For the replaced operator new: counts a block it took from malloc.
  static void CountHeapAllocation() noexcept;
};

// Heap blocks the replaced operator new took from malloc on this thread (not
// from a CallArena slice) since the thread started; tests compare it before and
// after a call. Stays 0 in a binary that does not link nn/operator_new.cc.
long HeapAllocationsOnThisThread() noexcept;

}  // namespace wavepool::nn
