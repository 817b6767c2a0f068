// Lets Abseil flags be spelled with dashes (--model-repository, --chunk-ms), the
// form our documented interfaces use, as well as with underscores. Only the
// name part of "--name" / "--name=value" is rewritten, and only before a bare
// "--" (after which everything is positional).
#pragma once

#include <string>
#include <vector>

namespace wavepool {

class DashedFlags {
 public:
  DashedFlags(int argc, char** argv) {
    bool positional_only = false;
    for (int i = 0; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--") positional_only = true;
      if (!positional_only && i > 0 && a.size() > 2 && a[0] == '-') {
        const size_t start = a[1] == '-' ? 2 : 1;
        const size_t end = a.find('=');
        for (size_t k = start; k < a.size() && k < end; ++k) {
          if (a[k] == '-') a[k] = '_';
        }
      }
      storage_.push_back(std::move(a));
    }
    for (std::string& s : storage_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(storage_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> storage_;
  std::vector<char*> pointers_;
};

}  // namespace wavepool
