// The 22 MIT-BIH DS1 records in ../shared/data/mitdb-ds1 read in full: every
// header, signal file (checksums verified) and reference annotation file. Skips when the shared
// data folder is absent (ctest label shared_data).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "dsp/wfdb.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

const std::string kDs1Dir = WP_SOURCE_DIR "/../shared/data/mitdb-ds1";

// de Chazal et al. (2004), DS1.
const std::vector<std::string> kDs1 = {"101", "106", "108", "109", "112", "114", "115", "116",
                                       "118", "119", "122", "124", "201", "203", "205", "207",
                                       "208", "209", "215", "220", "223", "230"};

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Independent count: beat codes straight from the annotation words, mapped to
// AAMI classes by their ecgcodes.h numbers (not through symbols); SKIP's 4
// bytes and AUX's padded string are stepped over.
std::map<char, int> NaiveAamiCounts(const std::string& atr) {
  static const std::map<int, char> kClassOfCode = {
      {1, 'N'}, {2, 'N'}, {3, 'N'},  {34, 'N'}, {11, 'N'}, {8, 'S'},  {4, 'S'}, {7, 'S'},
      {9, 'S'}, {5, 'V'}, {10, 'V'}, {6, 'F'},  {12, 'Q'}, {38, 'Q'}, {13, 'Q'}};
  std::map<char, int> counts;
  for (size_t p = 0; p + 1 < atr.size();) {
    const int w = static_cast<uint8_t>(atr[p]) | (static_cast<uint8_t>(atr[p + 1]) << 8);
    p += 2;
    if (w == 0) break;
    if (w >> 10 == 59) p += 4;
    if (w >> 10 == 63) p += static_cast<size_t>((w & 0x3ff) + 1) / 2 * 2;
    if (const auto it = kClassOfCode.find(w >> 10); it != kClassOfCode.end()) ++counts[it->second];
  }
  return counts;
}

TEST(MitdbDs1, ReadsAllRecordsAndCountsBeatsByAamiClass) {
  if (!std::filesystem::exists(kDs1Dir)) GTEST_SKIP() << kDs1Dir << " is absent";
  constexpr char kClasses[] = "NSVFQ";
  std::map<char, int> total, naive_total;
  std::printf("record      N     S     V     F     Q\n");
  for (const std::string& record : kDs1) {
    SCOPED_TRACE(record);
    const std::string path = kDs1Dir + "/" + record;
    absl::StatusOr<WfdbRecord> rec = ReadWfdbRecord(path);  // checksums verified
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(rec->header.sampling_frequency, 360);
    EXPECT_EQ(rec->header.num_samples, 650000);
    EXPECT_EQ(rec->frames(), 650000);
    ASSERT_EQ(rec->header.signals.size(), 2u);
    // MLII comes first in every DS1 record but 114, whose header lists V5 then
    // MLII (the data README's "first signal is MLII in every DS1 record" is
    // wrong for 114): pick the lead by description, not by index.
    const size_t mlii = record == "114" ? 1 : 0;
    EXPECT_EQ(rec->header.signals[mlii].description, "MLII");
    EXPECT_EQ(rec->adc[0], rec->header.signals[0].initial_value);
    EXPECT_EQ(rec->adc[1], rec->header.signals[1].initial_value);

    absl::StatusOr<std::vector<Annotation>> ann = ReadMitAnnotations(path + ".atr");
    ASSERT_TRUE(ann.ok()) << ann.status();
    std::map<char, int> counts;
    for (const Annotation& a : *ann) {
      EXPECT_GE(a.sample, 0);
      EXPECT_LT(a.sample, 650000);
      if (const char c = AamiClass(a.Symbol()); c != '\0') ++counts[c];
    }
    const std::map<char, int> naive = NaiveAamiCounts(ReadBytes(path + ".atr"));
    EXPECT_EQ(counts, naive);
    std::printf("%-6s", record.c_str());
    for (const char* c = kClasses; *c; ++c) {
      std::printf(" %5d", counts[*c]);
      total[*c] += counts[*c];
      naive_total[*c] += naive.count(*c) ? naive.at(*c) : 0;
    }
    std::printf("\n");
  }
  std::printf("total ");
  for (const char* c = kClasses; *c; ++c) std::printf(" %5d", total[*c]);
  std::printf("\n");
  EXPECT_EQ(total, naive_total);
  // The DS1 beat totals reported by de Chazal et al. (2004) and reused by later
  // inter-patient papers: 51,021 beats.
  const std::map<char, int> published = {
      {'N', 45866}, {'S', 944}, {'V', 3788}, {'F', 415}, {'Q', 8}};
  EXPECT_EQ(total, published);
}

}  // namespace
}  // namespace wavepool::dsp
