// Classification reports: accuracy, per-class precision / recall / F1, the
// confusion matrix as text and as an SVG picture.
#pragma once

#include <string>
#include <vector>

namespace wavepool::cli {

struct ClipScores {
  std::vector<int> truth;      // class index per example
  std::vector<int> predicted;  // class index per example
  double Accuracy() const;
};

// rows = truth, columns = predicted.
std::vector<std::vector<int>> ConfusionMatrix(const ClipScores& s, size_t classes);
std::string FormatConfusion(const ClipScores& s, const std::vector<std::string>& labels);
std::string ConfusionSvg(const ClipScores& s, const std::vector<std::string>& labels,
                         const std::string& title);

}  // namespace wavepool::cli
