// Small hand-written SVG charts. A line chart: one shared x axis, panels
// stacked vertically, each with its own y axis (linear from 0, or log10) and
// a legend; used by `wavepool bench --plot`. A horizontal bar chart: one row
// per category, one bar per series in each row; used by bench/bench_layers
// (time per layer). No dependencies beyond absl strings.
#pragma once

#include <string>
#include <vector>

namespace wavepool::cli {

struct PlotSeries {
  std::string name;   // legend text
  std::string color;  // any SVG colour, e.g. "#1f77b4"
  std::vector<double> y;  // one per LinePlot::x; NaN (or <= 0 on a log axis) = no point
};

struct PlotPanel {
  std::string y_label;
  bool log_y = false;  // log10 axis over whole decades; linear axes start at 0
  std::vector<PlotSeries> series;
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::vector<double> x;  // ascending; ticks are drawn at these values
  bool log_x = false;     // requires every x > 0
  std::vector<PlotPanel> panels;
};

// A complete standalone SVG document (text is XML-escaped).
std::string LinePlotSvg(const LinePlot& plot);

// Horizontal bars on a linear axis from 0: each series' y holds one value per
// category (NaN or < 0 = no bar), drawn in category order from the top.
struct BarPanel {
  std::string title;
  std::vector<std::string> categories;
  std::vector<PlotSeries> series;
};

struct BarPlot {
  std::string title;
  std::string value_label;  // under each panel's value axis
  std::vector<BarPanel> panels;
};

// A complete standalone SVG document (text is XML-escaped); each bar is
// labelled with its value.
std::string BarPlotSvg(const BarPlot& plot);

// Scatter panels stacked vertically, each with its own x axis (linear or log10)
// and a y axis spanning the data (not from 0: accuracies sit near the top).
// Each point carries a short label drawn beside it; series share colours and
// one legend per panel. Used by `wavepool sweep` (accuracy vs cost).
struct ScatterPoint {
  double x = 0, y = 0;
  std::string label;
};

struct ScatterSeries {
  std::string name;
  std::string color;
  std::vector<ScatterPoint> points;  // non-finite (or x <= 0 on a log axis) = skipped
};

struct ScatterPanel {
  std::string x_label, y_label;
  bool log_x = false;
  std::vector<ScatterSeries> series;
};

struct ScatterPlot {
  std::string title;
  std::vector<ScatterPanel> panels;
};

// A complete standalone SVG document (text is XML-escaped).
std::string ScatterPlotSvg(const ScatterPlot& plot);

}  // namespace wavepool::cli
