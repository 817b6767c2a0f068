// Helpers shared by the fuzz targets: the source tree (for committed models
// and signals), a scratch folder for the entry points that take a path, and
// the one way a target reports a broken invariant (abort, which libFuzzer
// records as a crash with the input that caused it).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace wavepool::fuzz {

// The repository root: $WAVEPOOL_SOURCE_DIR if set, else the tree the target
// was configured from (WP_SOURCE_DIR, set by fuzz/CMakeLists.txt).
inline std::filesystem::path SourceDir() {
  if (const char* env = std::getenv("WAVEPOOL_SOURCE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return WP_SOURCE_DIR;
}

// A broken invariant: the library returned something its contract rules out.
[[noreturn]] inline void Fail(std::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

inline void Require(bool ok, std::string_view what) {
  if (!ok) Fail(what);
}

// A folder under /dev/shm (memory, when present) or $TMPDIR, made once per
// process and removed at exit. Each target process uses its own.
class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    std::filesystem::path base = "/dev/shm";
    if (!std::filesystem::is_directory(base, ec)) base = std::filesystem::temp_directory_path();
    std::string pattern = (base / "wavepool-fuzz-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) Fail("cannot create a scratch folder");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Replaces the file's contents; false if it cannot be written (e.g. a name
// the file system refuses).
inline bool WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return done == bytes.size();
}

}  // namespace wavepool::fuzz
