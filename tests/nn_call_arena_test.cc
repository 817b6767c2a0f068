// CallArena with the program's operator new (nn/operator_new.cc): blocks come
// from the thread's slice only inside a Scope, are aligned and disjoint, the
// slice rewinds only when every block is released (from any thread), a full
// slice and a thread's exit are handled, and a real oneDNN model run makes no
// malloc call after its first.
#include "nn/call_arena.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace wavepool::nn {
namespace {

// A fresh allocation through the replaced operator new; the volatile pointer
// keeps GCC from pairing and eliding the new/delete.
void* New(size_t n) {
  void* volatile p = ::operator new(n);
  return p;
}

TEST(CallArena, OutsideAScopeBlocksComeFromMalloc) {
  const long before = HeapAllocationsOnThisThread();
  void* p = New(40);
  EXPECT_EQ(HeapAllocationsOnThisThread() - before, 1);
  EXPECT_FALSE(CallArena::Release(p));
  ::operator delete(p);
}

TEST(CallArena, InsideAScopeBlocksComeFromTheSliceAlignedAndDisjoint) {
  const CallArena::Scope scope;
  const long before = HeapAllocationsOnThisThread();
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  for (size_t n : {1, 7, 16, 17, 100, 0, 1000}) {
    auto* p = static_cast<unsigned char*>(New(n));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % CallArena::kAlign, 0u) << n;
    std::memset(p, 0xab, n);
    blocks.emplace_back(p, n == 0 ? 1 : n);
  }
  EXPECT_EQ(HeapAllocationsOnThisThread(), before) << "no malloc inside a scope";
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (size_t j = i + 1; j < blocks.size(); ++j) {
      const bool disjoint = blocks[i].first + blocks[i].second <= blocks[j].first ||
                            blocks[j].first + blocks[j].second <= blocks[i].first;
      EXPECT_TRUE(disjoint) << i << " and " << j;
    }
  }
  for (auto& [p, n] : blocks) ::operator delete(p);
}

TEST(CallArena, TheSliceRewindsWhenEveryBlockIsReleased) {
  void* first = nullptr;
  {
    const CallArena::Scope scope;
    first = New(64);
    ::operator delete(first);
  }
  const CallArena::Scope scope;
  void* again = New(64);
  EXPECT_EQ(again, first) << "all released: the next scope starts at the slice's start";
  ::operator delete(again);
}

TEST(CallArena, AHeldBlockIsNeverHandedOutAgain) {
  void* held = nullptr;
  {
    const CallArena::Scope scope;
    held = New(64);
    std::memset(held, 0x5a, 64);
  }
  const auto held_at = reinterpret_cast<uintptr_t>(held);
  {
    const CallArena::Scope scope;
    for (int i = 0; i < 100; ++i) {
      const auto p = reinterpret_cast<uintptr_t>(New(64));
      EXPECT_TRUE(p + 64 <= held_at || held_at + 64 <= p);
      ::operator delete(reinterpret_cast<void*>(p));
    }
  }
  for (int i = 0; i < 64; ++i) EXPECT_EQ(static_cast<unsigned char*>(held)[i], 0x5a);
  ::operator delete(held);
  { const CallArena::Scope rewind; }  // released: the next scope's end rewinds
  const CallArena::Scope scope;
  void* q = New(64);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q), held_at);
  ::operator delete(q);
}

TEST(CallArena, ABlockReleasedOnAnotherThreadLetsTheOwnerRewind) {
  void* first = nullptr;
  {
    const CallArena::Scope scope;
    first = New(48);
  }
  const auto first_at = reinterpret_cast<uintptr_t>(first);
  {
    // Held: this scope's block comes after it, and the end cannot rewind.
    const CallArena::Scope scope;
    void* p = New(48);
    EXPECT_NE(reinterpret_cast<uintptr_t>(p), first_at);
    ::operator delete(p);
  }
  std::thread([first] { ::operator delete(first); }).join();
  { const CallArena::Scope rewind; }
  const CallArena::Scope scope;
  void* q = New(48);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q), first_at);
  ::operator delete(q);
}

TEST(CallArena, AFullSliceFallsBackToMalloc) {
  const CallArena::Scope scope;
  const long before = HeapAllocationsOnThisThread();
  void* big = New(CallArena::kSliceBytes + 1);
  EXPECT_EQ(HeapAllocationsOnThisThread() - before, 1);
  EXPECT_FALSE(CallArena::Release(big));
  ::operator delete(big);
}

TEST(CallArena, ExitedThreadsGiveTheirSlicesBack) {
  // Four times as many threads as slices, one after another: each still gets
  // arena blocks, so the slices of exited threads were recycled.
  for (size_t i = 0; i < 4 * CallArena::kSlices; ++i) {
    bool from_arena = false;
    std::thread([&from_arena] {
      const CallArena::Scope scope;
      const long before = HeapAllocationsOnThisThread();
      void* p = New(32);
      from_arena = HeapAllocationsOnThisThread() == before;
      ::operator delete(p);
    }).join();
    ASSERT_TRUE(from_arena) << "thread " << i;
  }
}

TEST(CallArena, ContainersInsideAScopeWork) {
  const CallArena::Scope scope;
  const long before = HeapAllocationsOnThisThread();
  std::vector<std::unique_ptr<int>> v;
  for (int i = 0; i < 200; ++i) v.push_back(std::make_unique<int>(i));
  int sum = 0;
  for (const auto& p : v) sum += *p;
  EXPECT_EQ(sum, 199 * 200 / 2);
  EXPECT_EQ(HeapAllocationsOnThisThread(), before);
}

}  // namespace
}  // namespace wavepool::nn
