#include "clients/confusion.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wavepool::cli {

double ClipScores::Accuracy() const {
  if (truth.empty()) return 0;
  size_t ok = 0;
  for (size_t i = 0; i < truth.size(); ++i) ok += truth[i] == predicted[i];
  return static_cast<double>(ok) / static_cast<double>(truth.size());
}

std::vector<std::vector<int>> ConfusionMatrix(const ClipScores& s, size_t classes) {
  std::vector<std::vector<int>> m(classes, std::vector<int>(classes, 0));
  for (size_t i = 0; i < s.truth.size(); ++i) {
    const size_t t = static_cast<size_t>(s.truth[i]), p = static_cast<size_t>(s.predicted[i]);
    if (t < classes && p < classes) ++m[t][p];
  }
  return m;
}

std::string FormatConfusion(const ClipScores& s, const std::vector<std::string>& labels) {
  const size_t k = labels.size();
  const auto m = ConfusionMatrix(s, k);
  std::string out = absl::StrFormat("accuracy %.2f%% (%d of %d)\n\n", 100 * s.Accuracy(),
                                    static_cast<int>(s.Accuracy() * s.truth.size() + 0.5),
                                    static_cast<int>(s.truth.size()));
  absl::StrAppendFormat(&out, "%-14s %9s %9s %9s %8s\n", "class", "precision", "recall", "F1",
                        "support");
  for (size_t c = 0; c < k; ++c) {
    int tp = m[c][c], fn = 0, fp = 0;
    for (size_t o = 0; o < k; ++o) {
      if (o == c) continue;
      fn += m[c][o];
      fp += m[o][c];
    }
    const int support = tp + fn;
    if (support == 0 && fp == 0) continue;
    const double prec = tp + fp ? static_cast<double>(tp) / (tp + fp) : 0;
    const double rec = support ? static_cast<double>(tp) / support : 0;
    const double f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
    absl::StrAppendFormat(&out, "%-14s %8.2f%% %8.2f%% %8.2f%% %8d\n", labels[c], 100 * prec,
                          100 * rec, 100 * f1, support);
  }
  absl::StrAppend(&out, "\nconfusion (rows: truth, columns: predicted)\n", std::string(14, ' '));
  for (size_t c = 0; c < k; ++c) absl::StrAppendFormat(&out, "%5s", labels[c].substr(0, 4));
  out += "\n";
  for (size_t r = 0; r < k; ++r) {
    absl::StrAppendFormat(&out, "%-14s", labels[r]);
    for (size_t c = 0; c < k; ++c) absl::StrAppendFormat(&out, "%5d", m[r][c]);
    out += "\n";
  }
  return out;
}

std::string ConfusionSvg(const ClipScores& s, const std::vector<std::string>& labels,
                         const std::string& title) {
  const size_t k = labels.size();
  const auto m = ConfusionMatrix(s, k);
  const int cell = 40, left = 110, top = 70;
  const int size = static_cast<int>(k) * cell;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
      "fill=\"white\"/>\n<text x=\"%d\" y=\"22\" font-size=\"15\">%s — accuracy %.2f%%</text>\n"
      "<text x=\"%d\" y=\"50\">predicted</text>\n"
      "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\">truth</text>\n",
      left + size + 20, top + size + 20, 10, title, 100 * s.Accuracy(), left + size / 2 - 25,
      top + size / 2, top + size / 2);
  for (size_t r = 0; r < k; ++r) {
    int row_total = 0;
    for (size_t c = 0; c < k; ++c) row_total += m[r][c];
    absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
                          left - 6, top + static_cast<int>(r) * cell + cell / 2 + 4, labels[r]);
    absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                          left + static_cast<int>(r) * cell + cell / 2, top - 6,
                          labels[r].size() > 4 ? labels[r].substr(0, 3) + "…" : labels[r]);
    for (size_t c = 0; c < k; ++c) {
      const double frac = row_total ? static_cast<double>(m[r][c]) / row_total : 0;
      const int shade = 255 - static_cast<int>(frac * 200);
      const bool diag = r == c;
      absl::StrAppendFormat(
          &svg, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" stroke=\"#ccc\"/>\n",
          left + static_cast<int>(c) * cell, top + static_cast<int>(r) * cell, cell, cell,
          diag ? shade : 255, diag ? 255 : shade, shade);
      if (m[r][c]) {
        absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n",
                              left + static_cast<int>(c) * cell + cell / 2,
                              top + static_cast<int>(r) * cell + cell / 2 + 4, m[r][c]);
      }
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace wavepool::cli
