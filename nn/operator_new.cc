// The program's replacement of the global operator new and delete
// ([replacement.functions]): blocks come from the thread's CallArena slice
// while a CallArena::Scope is open (oneDNN's per-call bookkeeping), from malloc
// otherwise. Linked into the binaries that run models (an object library, so
// it is always in the link). Every form that a plain `delete` may free is
// replaced here, the nothrow ones included: under AddressSanitizer the runtime
// defines them too, and its nothrow new paired with our delete would be a
// new/free mismatch. The aligned forms stay the runtime's, new and delete
// alike. Under AddressSanitizer the fallback is its intercepted malloc, so
// heap checks stay on; blocks inside an arena slice are not redzoned.
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

// The nothrow forms: null where the others throw bad_alloc.
void* HeapNewNothrow(std::size_t n) noexcept {
  try {
    return HeapNew(n);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace

void* operator new(std::size_t n) { return HeapNew(n); }
void* operator new[](std::size_t n) { return HeapNew(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return HeapNewNothrow(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return HeapNewNothrow(n); }
void operator delete(void* p, const std::nothrow_t&) noexcept { HeapDelete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { HeapDelete(p); }
void operator delete(void* p) noexcept { HeapDelete(p); }
void operator delete[](void* p) noexcept { HeapDelete(p); }
void operator delete(void* p, std::size_t) noexcept { HeapDelete(p); }
void operator delete[](void* p, std::size_t) noexcept { HeapDelete(p); }
