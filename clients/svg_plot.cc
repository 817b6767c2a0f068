#include "clients/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wavepool::cli {
namespace {

constexpr double kWidth = 720, kLeft = 80, kRight = 30, kTop = 50, kPanelHeight = 240,
                 kPanelGap = 60, kBottom = 50;
// Bar charts: category labels left of the bars, one bar of kBarHeight per
// series in a row, kRowGap between rows.
constexpr double kBarLeft = 170, kBarRight = 70, kBarHeight = 12, kRowGap = 8, kBarPanelGap = 70;

std::string Escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (v != 0 && (std::fabs(v) >= 1e6 || std::fabs(v) < 1e-3)) return absl::StrFormat("%.0e", v);
  return absl::StrFormat("%g", v);
}

// Maps data values to [0, 1] along an axis.
struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  double Map(double v) const {
    const double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo,
                 h = log ? std::log10(hi) : hi;
    return h > l ? (a - l) / (h - l) : 0.5;
  }
};

bool Plottable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

// y axis: whole decades for log, 0 to a 1/2/5 step multiple for linear.
Scale YScale(const PlotPanel& panel, std::vector<double>* ticks) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const PlotSeries& s : panel.series) {
    for (const double v : s.y) {
      if (!Plottable(v, panel.log_y)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  Scale sc;
  sc.log = panel.log_y;
  if (panel.log_y) {
    if (!std::isfinite(lo)) lo = 1, hi = 10;
    const int d0 = static_cast<int>(std::floor(std::log10(lo)));
    int d1 = static_cast<int>(std::ceil(std::log10(hi)));
    if (d1 <= d0) d1 = d0 + 1;
    sc.lo = std::pow(10.0, d0);
    sc.hi = std::pow(10.0, d1);
    for (int d = d0; d <= d1; ++d) {
      ticks->push_back(std::pow(10.0, d));
      if (d1 - d0 <= 2 && d < d1) {
        ticks->push_back(2 * std::pow(10.0, d));
        ticks->push_back(5 * std::pow(10.0, d));
      }
    }
    std::sort(ticks->begin(), ticks->end());
    return sc;
  }
  if (!std::isfinite(hi) || hi <= 0) hi = 1;
  const double raw = hi / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag <= 1 ? mag : raw / mag <= 2 ? 2 * mag : raw / mag <= 5 ? 5 * mag
                                                                                : 10 * mag;
  sc.lo = 0;
  sc.hi = step * std::ceil(hi / step);
  for (double t = 0; t <= sc.hi + step / 2; t += step) ticks->push_back(t);
  return sc;
}

Scale XScale(const LinePlot& plot) {
  Scale sc;
  sc.log = plot.log_x;
  if (plot.x.empty()) return sc;
  double lo = plot.x.front(), hi = plot.x.back();
  if (plot.log_x) {
    if (hi <= lo) lo /= 2, hi *= 2;
    const double pad = std::pow(hi / lo, 0.04);
    sc.lo = lo / pad;
    sc.hi = hi * pad;
  } else {
    if (hi <= lo) lo -= 1, hi += 1;
    const double pad = 0.04 * (hi - lo);
    sc.lo = lo - pad;
    sc.hi = hi + pad;
  }
  return sc;
}

// The document's opening: white background and the title, kWidth wide.
std::string SvgOpen(double height, const std::string& title) {
  return absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.0f\" y=\"28\" font-size=\"14\">%s</text>\n",
      kWidth, height, kLeft, Escape(title));
}

}  // namespace

std::string LinePlotSvg(const LinePlot& plot) {
  const double plot_w = kWidth - kLeft - kRight;
  const double height =
      kTop + plot.panels.size() * kPanelHeight +
      (plot.panels.empty() ? 0 : (plot.panels.size() - 1) * kPanelGap) + kBottom;
  std::string svg = SvgOpen(height, plot.title);
  const Scale xs = XScale(plot);
  for (size_t p = 0; p < plot.panels.size(); ++p) {
    const PlotPanel& panel = plot.panels[p];
    const double top = kTop + p * (kPanelHeight + kPanelGap), bottom = top + kPanelHeight;
    auto px = [&](double x) { return kLeft + xs.Map(x) * plot_w; };
    std::vector<double> yticks;
    const Scale ys = YScale(panel, &yticks);
    auto py = [&](double y) { return bottom - ys.Map(y) * kPanelHeight; };
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"none\" stroke=\"#444\"/>\n",
                          kLeft, top, plot_w, kPanelHeight);
    for (const double t : yticks) {
      const double y = py(t);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#ddd\"/>\n"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                            kLeft, y, kLeft + plot_w, y, kLeft - 6, y + 4, Number(t));
    }
    for (const double t : plot.x) {
      const double x = px(t);
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#eee\"/>\n"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                            x, top, x, bottom, x, bottom + 16, Number(t));
    }
    absl::StrAppendFormat(&svg,
                          "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
                          "transform=\"rotate(-90 18 %.1f)\">%s%s</text>\n",
                          (top + bottom) / 2, (top + bottom) / 2, Escape(panel.y_label),
                          panel.log_y ? " (log)" : "");
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const PlotSeries& series = panel.series[s];
      std::string points;
      for (size_t i = 0; i < plot.x.size() && i < series.y.size(); ++i) {
        if (!Plottable(series.y[i], panel.log_y) || !Plottable(plot.x[i], plot.log_x)) continue;
        absl::StrAppendFormat(&points, "%s%.1f,%.1f", points.empty() ? "" : " ", px(plot.x[i]),
                              py(series.y[i]));
        absl::StrAppendFormat(&svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                              px(plot.x[i]), py(series.y[i]), Escape(series.color));
      }
      if (!points.empty()) {
        absl::StrAppendFormat(&svg,
                              "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                              "stroke-width=\"2\"/>\n",
                              points, Escape(series.color));
      }
      const double ly = top + 16 + 16 * s;
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                            "stroke-width=\"2\"/>\n<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                            kLeft + 10, ly - 4, kLeft + 30, ly - 4, Escape(series.color),
                            kLeft + 36, ly, Escape(series.name));
    }
  }
  absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s%s</text>\n",
                        kLeft + plot_w / 2, height - 12, Escape(plot.x_label),
                        plot.log_x ? " (log)" : "");
  svg += "</svg>\n";
  return svg;
}

std::string BarPlotSvg(const BarPlot& plot) {
  const double plot_w = kWidth - kBarLeft - kBarRight;
  const auto row_height = [](const BarPanel& p) {
    return std::max<size_t>(p.series.size(), 1) * kBarHeight + kRowGap;
  };
  const auto panel_height = [&](const BarPanel& p) { return p.categories.size() * row_height(p) + kRowGap; };
  // Per panel: a title line, the bars, the axis ticks and label below.
  double height = kTop + kBottom - kBarPanelGap;
  for (const BarPanel& p : plot.panels) height += 20 + panel_height(p) + kBarPanelGap;
  std::string svg = SvgOpen(height, plot.title);
  double top = kTop;
  for (const BarPanel& panel : plot.panels) {
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">%s</text>\n",
                          kBarLeft, top + 12, Escape(panel.title));
    // Legend on the title's line, right-aligned.
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const double lx = kWidth - kBarRight - 110.0 * (panel.series.size() - s);
      absl::StrAppendFormat(&svg,
                            "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"%s\"/>\n"
                            "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                            lx, top + 3, Escape(panel.series[s].color), lx + 16, top + 12,
                            Escape(panel.series[s].name));
    }
    top += 20;
    const double h = panel_height(panel), bottom = top + h;
    // The line chart's linear axis: 0 to a 1/2/5 step multiple of the largest value.
    PlotPanel axis;
    axis.series = panel.series;
    std::vector<double> ticks;
    const Scale vs = YScale(axis, &ticks);
    const auto px = [&](double v) { return kBarLeft + vs.Map(v) * plot_w; };
    for (const double t : ticks) {
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                            px(t), top, px(t), bottom, px(t), bottom + 16, Number(t));
    }
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                          kBarLeft, top, kBarLeft, bottom, kBarLeft + plot_w / 2, bottom + 34,
                          Escape(plot.value_label));
    const double row_h = row_height(panel);
    for (size_t c = 0; c < panel.categories.size(); ++c) {
      const double row_top = top + kRowGap + c * row_h;
      absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                            kBarLeft - 6, row_top + (row_h - kRowGap) / 2 + 4,
                            Escape(panel.categories[c]));
      for (size_t s = 0; s < panel.series.size(); ++s) {
        const PlotSeries& series = panel.series[s];
        if (c >= series.y.size() || !std::isfinite(series.y[c]) || series.y[c] < 0) continue;
        const double y = row_top + s * kBarHeight, w = px(series.y[c]) - kBarLeft;
        absl::StrAppendFormat(&svg,
                              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                              "fill=\"%s\"/>\n"
                              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%s</text>\n",
                              kBarLeft, y + 1, w, kBarHeight - 2, Escape(series.color),
                              kBarLeft + w + 4, y + kBarHeight - 2,
                              absl::StrFormat("%.3g", series.y[c]));
      }
    }
    top = bottom + kBarPanelGap;
  }
  svg += "</svg>\n";
  return svg;
}

namespace {

// Nice ticks (1/2/5 steps) over [lo, hi], widened to whole steps.
Scale SpanScale(double lo, double hi, bool log, std::vector<double>* ticks) {
  Scale sc;
  sc.log = log;
  if (log) {
    const int d0 = static_cast<int>(std::floor(std::log10(lo)));
    int d1 = static_cast<int>(std::ceil(std::log10(hi)));
    if (d1 <= d0) d1 = d0 + 1;
    sc.lo = std::pow(10.0, d0);
    sc.hi = std::pow(10.0, d1);
    for (int d = d0; d <= d1; ++d) {
      for (const double m : {1.0, 2.0, 5.0}) {
        const double t = m * std::pow(10.0, d);
        if (t >= sc.lo && t <= sc.hi && (m == 1 || d1 - d0 <= 2)) ticks->push_back(t);
      }
    }
    return sc;
  }
  if (hi <= lo) lo -= 1, hi += 1;
  const double raw = (hi - lo) / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag <= 1 ? mag : raw / mag <= 2 ? 2 * mag : raw / mag <= 5 ? 5 * mag
                                                                                : 10 * mag;
  sc.lo = step * std::floor(lo / step);
  sc.hi = step * std::ceil(hi / step);
  if (sc.hi <= sc.lo) sc.hi = sc.lo + step;
  for (double t = sc.lo; t <= sc.hi + step / 2; t += step) ticks->push_back(t);
  return sc;
}

}  // namespace

std::string ScatterPlotSvg(const ScatterPlot& plot) {
  const double plot_w = kWidth - kLeft - kRight;
  const double height = kTop + plot.panels.size() * kPanelHeight +
      (plot.panels.empty() ? 0 : (plot.panels.size() - 1) * kPanelGap) + kBottom;
  std::string svg = SvgOpen(height, plot.title);
  for (size_t p = 0; p < plot.panels.size(); ++p) {
    const ScatterPanel& panel = plot.panels[p];
    const double top = kTop + p * (kPanelHeight + kPanelGap), bottom = top + kPanelHeight;
    double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
    for (const ScatterSeries& s : panel.series) {
      for (const ScatterPoint& pt : s.points) {
        if (!Plottable(pt.x, panel.log_x) || !std::isfinite(pt.y)) continue;
        xlo = std::min(xlo, pt.x), xhi = std::max(xhi, pt.x);
        ylo = std::min(ylo, pt.y), yhi = std::max(yhi, pt.y);
      }
    }
    if (!std::isfinite(xlo)) xlo = 1, xhi = 10, ylo = 0, yhi = 1;
    std::vector<double> xticks, yticks;
    const Scale xs = SpanScale(xlo, xhi, panel.log_x, &xticks);
    const Scale ys = SpanScale(ylo, yhi, false, &yticks);
    const auto px = [&](double x) { return kLeft + xs.Map(x) * plot_w; };
    const auto py = [&](double y) { return bottom - ys.Map(y) * kPanelHeight; };
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"none\" stroke=\"#444\"/>\n",
                          kLeft, top, plot_w, kPanelHeight);
    for (const double t : yticks) {
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#ddd\"/>\n"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                            kLeft, py(t), kLeft + plot_w, py(t), kLeft - 6, py(t) + 4, Number(t));
    }
    for (const double t : xticks) {
      absl::StrAppendFormat(&svg,
                            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#eee\"/>\n"
                            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                            px(t), top, px(t), bottom, px(t), bottom + 16, Number(t));
    }
    absl::StrAppendFormat(&svg,
                          "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
                          "transform=\"rotate(-90 18 %.1f)\">%s</text>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s%s</text>\n",
                          (top + bottom) / 2, (top + bottom) / 2, Escape(panel.y_label),
                          kLeft + plot_w / 2, bottom + 34, Escape(panel.x_label),
                          panel.log_x ? " (log)" : "");
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const ScatterSeries& series = panel.series[s];
      for (const ScatterPoint& pt : series.points) {
        if (!Plottable(pt.x, panel.log_x) || !std::isfinite(pt.y)) continue;
        absl::StrAppendFormat(&svg,
                              "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n"
                              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#333\">%s"
                              "</text>\n",
                              px(pt.x), py(pt.y), Escape(series.color), px(pt.x) + 6,
                              py(pt.y) - 5, Escape(pt.label));
      }
      const double lx = kLeft + plot_w - 90, ly = top + 16 + 16 * s;
      absl::StrAppendFormat(&svg,
                            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n"
                            "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                            lx, ly - 4, Escape(series.color), lx + 10, ly, Escape(series.name));
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace wavepool::cli
