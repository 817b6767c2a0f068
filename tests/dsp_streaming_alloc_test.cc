// The streaming hot path never touches the heap: this file replaces the global
// operator new (and, on glibc without sanitizers, malloc and friends) with
// versions that count calls while a flag is set, then streams audio.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include "dsp/log_mel.h"
#include "gtest/gtest.h"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_news{0};
std::atomic<int64_t> g_mallocs{0};

void* CountedNew(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* CountedAlignedNew(std::size_t size, std::align_val_t align) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  const std::size_t a = static_cast<std::size_t>(align);
  // aligned_alloc wants a size that is a multiple of the alignment.
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a + (size == 0 ? a : 0))) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) { return CountedNew(size); }
void* operator new[](std::size_t size) { return CountedNew(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return CountedNew(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return CountedNew(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t size, std::align_val_t align) { return CountedAlignedNew(size, align); }
void* operator new[](std::size_t size, std::align_val_t align) {
  return CountedAlignedNew(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

// C allocations too (FFTW, libc): glibc lets a program interpose malloc and
// forwards to its own __libc_* entry points. Sanitizer runtimes own malloc, so
// there only operator new is counted.
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
#define WP_COUNT_MALLOC 1
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);

static void CountMalloc() {
  if (g_counting.load(std::memory_order_relaxed)) g_mallocs.fetch_add(1, std::memory_order_relaxed);
}
void* malloc(std::size_t n) {
  CountMalloc();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  CountMalloc();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  CountMalloc();
  return __libc_realloc(p, n);
}
void* memalign(std::size_t align, std::size_t n) {
  CountMalloc();
  return __libc_memalign(align, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) {
  CountMalloc();
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, std::size_t align, std::size_t n) {
  CountMalloc();
  void* p = __libc_memalign(align, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}  // extern "C"
#else
#define WP_COUNT_MALLOC 0
#endif

namespace wavepool::dsp {
namespace {

std::vector<float> RandomSignal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

void ExpectNoAllocationWhileStreaming(const FeatureWindowOptions& o, size_t length, uint32_t seed) {
  const std::vector<float> signal = RandomSignal(length, seed);
  absl::StatusOr<std::vector<std::vector<float>>> want = FeatureWindows(o, signal, nullptr);
  ASSERT_TRUE(want.ok()) << want.status();
  absl::StatusOr<StreamingFeatures> stream = StreamingFeatures::Create(o);
  ASSERT_TRUE(stream.ok()) << stream.status();
  // Chunk sizes drawn before counting starts; the callback only compares.
  std::mt19937 rng(seed);
  std::vector<size_t> chunks;
  for (size_t total = 0; total < length;) {
    const size_t c = std::min(length - total, std::uniform_int_distribution<size_t>(0, 900)(rng));
    chunks.push_back(c);
    total += c;
  }
  size_t windows = 0;
  bool all_equal = true;
  auto check = [&](uint64_t index, std::span<const float> v) {
    all_equal = all_equal && index < want->size() && v.size() == (*want)[index].size() &&
                std::memcmp(v.data(), (*want)[index].data(), v.size_bytes()) == 0;
    ++windows;
  };
  g_news = 0;
  g_mallocs = 0;
  g_counting = true;
  size_t pos = 0;
  for (size_t c : chunks) {
    stream->Push(std::span<const float>(signal).subspan(pos, c), check);
    pos += c;
  }
  const bool padded = stream->Finish(check);
  g_counting = false;
  EXPECT_EQ(g_news.load(), 0) << "operator new calls during Push/Finish, seed " << seed;
  EXPECT_EQ(g_mallocs.load(), 0) << "malloc-family calls during Push/Finish, seed " << seed;
  EXPECT_TRUE(padded);
  EXPECT_EQ(windows, want->size()) << "seed " << seed;
  EXPECT_TRUE(all_equal) << "streamed windows differ from FeatureWindows, seed " << seed;
}

TEST(StreamingFeaturesAllocation, CounterSeesAllocations) {
  // The counters work: a vector allocation is seen by both.
  g_news = 0;
  g_mallocs = 0;
  g_counting = true;
  auto* v = new std::vector<float>(100);
  g_counting = false;
  delete v;
  EXPECT_EQ(g_news.load(), 2);  // the vector object and its buffer
  if (WP_COUNT_MALLOC) {
    EXPECT_EQ(g_mallocs.load(), 2);
  }
}

TEST(StreamingFeaturesAllocation, PushAndFinishNeverAllocate) {
  FeatureWindowOptions digit;  // 8 kHz: frame 200, hop 80, fft 256, 40 bands, window 8000 / 2000
  ExpectNoAllocationWhileStreaming(digit, 10 * 8000 + 1234, 11);
  digit.norm = FeatureNorm::kPerFrame;
  ExpectNoAllocationWhileStreaming(digit, 3 * 8000 + 17, 12);
}

// Other accepted FFT sizes (even, no prime factor above 7), at 16 kHz: the
// malloc counter is what shows that FFTW keeps its scratch off the heap.
TEST(StreamingFeaturesAllocation, AcceptedFftSizesNeverAllocate) {
  uint32_t seed = 20;
  for (size_t fft_size : {210, 400, 480, 882}) {
    FeatureWindowOptions o;
    o.log_mel.sample_rate_hz = 16000;
    o.log_mel.frame_length = 201;
    o.log_mel.frame_hop = 160;
    o.log_mel.fft_size = fft_size;
    o.log_mel.num_bands = 40;
    o.log_mel.f_max_hz = 8000;
    o.window_length = 16001;  // 99 frames, then 120 samples of no frame
    o.window_hop = 4000;
    o.norm = FeatureNorm::kPerWindow;
    SCOPED_TRACE(::testing::Message() << "fft_size " << fft_size);
    ExpectNoAllocationWhileStreaming(o, 3 * 16000 + 99, ++seed);
  }
}

}  // namespace
}  // namespace wavepool::dsp
