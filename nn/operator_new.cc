// The program's replacement of the global operator new and delete
// ([replacement.functions]): blocks come from the thread's CallArena slice
// while a CallArena::Scope is open (oneDNN's per-call bookkeeping), from malloc
// otherwise. Linked into the binaries that run models (an object library, so
// it is always in the link); the aligned and nothrow forms keep libstdc++'s
// defaults, which call these or use their own aligned allocation. Under
// AddressSanitizer the fallback is its intercepted malloc, so heap checks
// stay on; blocks inside an arena slice are not redzoned.
#include <cstdlib>
#include <new>

#include "nn/call_arena.h"

namespace {

void* HeapNew(std::size_t n) {
  if (void* p = wavepool::nn::CallArena::Allocate(n)) return p;
  wavepool::nn::CallArena::CountHeapAllocation();
  for (;;) {
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

// Through a pointer so GCC does not pair an inlined free with `new`
// (-Wmismatched-new-delete): both sides of the pair are replaced here.
void (*volatile g_free)(void*) = std::free;

void HeapDelete(void* p) noexcept {
  if (p != nullptr && !wavepool::nn::CallArena::Release(p)) g_free(p);
}

}  // namespace

void* operator new(std::size_t n) { return HeapNew(n); }
void* operator new[](std::size_t n) { return HeapNew(n); }
void operator delete(void* p) noexcept { HeapDelete(p); }
void operator delete[](void* p) noexcept { HeapDelete(p); }
void operator delete(void* p, std::size_t) noexcept { HeapDelete(p); }
void operator delete[](void* p, std::size_t) noexcept { HeapDelete(p); }
