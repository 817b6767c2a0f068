// Certified fraction of ECG beats streamed through Session at the model's 360 Hz
// and, resampled by the client, at 250 and 500 Hz (MIT-BIH DS1 records 101,
// 106 and 108, the first 300 s of MLII, as docs/pooling.md's table). Prints
// the table docs/pooling.md quotes. Skips when ../shared/data is absent (ctest
// label shared_data).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "dsp/wfdb.h"
#include "gtest/gtest.h"
#include "server/model_repository.h"
#include "server/session.h"
#include "tests/resample_signal.h"

namespace wavepool::server {
namespace {

const std::string kDs1Dir = WP_SOURCE_DIR "/../shared/data/mitdb-ds1";

struct Count {
  size_t beats = 0, certified = 0;
};

Count Stream(const LoadedModel& model, double rate, float eps, const std::vector<float>& x) {
  v1::StreamConfig config;
  config.set_sample_rate_hz(rate);
  config.set_encoding(v1::FLOAT32);
  config.set_certify_epsilon(eps);
  auto s = Session::Create(config, std::shared_ptr<const LoadedModel>(&model, [](auto*) {}));
  EXPECT_TRUE(s.ok()) << s.status();
  Count count;
  const auto on_window = [&](v1::WindowResult&& w) {
    ++count.beats;
    count.certified += w.certified();
  };
  const auto on_event = [](v1::Event&&) {};
  SessionOutput sink{on_window, on_event};
  for (size_t i = 0; i < x.size(); i += 4096) {
    v1::SampleChunk chunk;
    for (size_t k = i; k < std::min(x.size(), i + 4096); ++k) chunk.add_values(x[k]);
    EXPECT_TRUE((*s)->Push(chunk, sink).ok());
  }
  EXPECT_TRUE((*s)->Finish(sink, 0).ok());
  return count;
}


TEST(CertifySharedData, EcgCertifiedFractionAtTheModelRateAnd250And500Hz) {
  if (!std::filesystem::exists(kDs1Dir + "/101.hea")) GTEST_SKIP() << kDs1Dir << " absent";
  auto model = ModelRepository::LoadVersion(WP_SOURCE_DIR "/models/ecg-beats/5", "ecg-beats", 5);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::vector<double> rates = {360, 250, 500};
  const std::vector<float> budgets = {1e-6f, 1e-5f};
  std::vector<std::vector<Count>> total(rates.size(), std::vector<Count>(budgets.size()));
  for (const char* record : {"101", "106", "108"}) {
    auto rec = dsp::ReadWfdbRecord(kDs1Dir + "/" + record + ".hea");
    ASSERT_TRUE(rec.ok()) << rec.status();
    const double native = rec->header.sampling_frequency;
    std::vector<float> x = rec->Physical(rec->SignalNamed("MLII"));
    x.resize(std::min(x.size(), static_cast<size_t>(300 * native)));
    float peak = 0;
    for (float v : x) peak = std::max(peak, std::fabs(v));
    std::printf("record %s: largest |sample| %.3g mV\n", record, peak);
    for (size_t r = 0; r < rates.size(); ++r) {
      const std::vector<float> sent =
          rates[r] == native ? x : testing::ResampleSignal(x, native, rates[r]);
      for (size_t e = 0; e < budgets.size(); ++e) {
        const Count c = Stream(**model, rates[r], budgets[e], sent);
        total[r][e].beats += c.beats;
        total[r][e].certified += c.certified;
      }
    }
  }
  std::printf("| sent at | eps 1e-6 mV | eps 1e-5 mV | beats |\n|---|---|---|---|\n");
  for (size_t r = 0; r < rates.size(); ++r) {
    std::printf("| %g Hz | %.3f | %.3f | %zu |\n", rates[r],
                double(total[r][0].certified) / double(total[r][0].beats),
                double(total[r][1].certified) / double(total[r][1].beats), total[r][0].beats);
    // Resampling keeps the beats (within 1 %), and the bound through it
    // still certifies some at 1e-6 mV.
    EXPECT_NEAR(double(total[r][0].beats), double(total[0][0].beats), 0.01 * total[0][0].beats);
    EXPECT_GT(total[r][0].certified, 0u) << rates[r];
    // The resampler's gain and allowance only widen the bounds.
    EXPECT_LE(total[r][1].certified, total[0][1].certified) << rates[r];
  }
}

}  // namespace
}  // namespace wavepool::server
