// Safetensors: hand-assembled bytes decoded to hand-known values, exact bytes
// written, round trips, and malformed files that must each give an error
// (never a crash or an out-of-bounds read; run under ASan in the sanitizer build).
#include "nn/safetensors.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wavepool::nn {
namespace {

using ::testing::HasSubstr;

std::string Le64(uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s;
}

std::string File(const std::string& header, const std::string& data) {
  return Le64(header.size()) + header + data;
}

// 1.0f = 0x3f800000 and -2.5f = 0xc0200000, little-endian.
const std::string kTwoFloats("\x00\x00\x80\x3f\x00\x00\x20\xc0", 8);

TEST(Safetensors, DecodesHandAssembledBytes) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},)"
      R"("s":{"dtype":"F32","shape":[],"data_offsets":[4,8]}})";
  auto st = ParseSafetensors(File(header, kTwoFloats));
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(st->tensors.size(), 2u);
  EXPECT_EQ(st->tensors.at("w").shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(st->tensors.at("w").data, (std::vector<float>{1.0f, -2.5f}));
  // A scalar (shape []) holds one value.
  EXPECT_TRUE(st->tensors.at("s").shape.empty());
  EXPECT_EQ(st->tensors.at("s").data, (std::vector<float>{-2.5f}));
  EXPECT_EQ(st->metadata.at("format"), "pt");
}

TEST(Safetensors, SerializesTheReferenceLayout) {
  Safetensors st;
  st.metadata["format"] = "pt";
  st.tensors["b"] = Tensor{{2}, {1.0f, -2.5f}};
  st.tensors["a"] = Tensor{{1}, {1.0f}};
  const std::string bytes = SerializeSafetensors(st);
  // Metadata first, then keys sorted, offsets contiguous in that order, compact
  // JSON padded with spaces to a multiple of 8.
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(header.size() % 8, 0u);
  EXPECT_EQ(bytes, Le64(header.size()) + header + std::string("\x00\x00\x80\x3f", 4) + kTwoFloats);
}

TEST(Safetensors, RoundTripIsBitExact) {
  Safetensors st;
  st.metadata["command"] = "wavepool train --spec \"a b\"\n\ttab \xc3\xa9";  // quotes, controls, UTF-8
  st.metadata["empty"] = "";
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 3.0e38f, -1.17549435e-38f};
  st.tensors["conv.weight"] = Tensor{{7}, std::vector<float>(std::begin(specials), std::end(specials))};
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  Tensor big{{3, 5, 7, 11}, std::vector<float>(3 * 5 * 7 * 11)};
  for (float& v : big.data) v = normal(rng);
  st.tensors["big"] = big;
  st.tensors["empty"] = Tensor{{0, 3}, {}};
  st.tensors["scalar"] = Tensor{{}, {42.0f}};
  st.tensors["name with \"quote\""] = Tensor{{1}, {1.0f}};

  const std::string path = ::testing::TempDir() + "/roundtrip.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, st).ok());
  auto back = ReadSafetensors(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->metadata, st.metadata);
  ASSERT_EQ(back->tensors.size(), st.tensors.size());
  for (const auto& [name, t] : st.tensors) {
    SCOPED_TRACE(name);
    const Tensor& u = back->tensors.at(name);
    EXPECT_EQ(u.shape, t.shape);
    ASSERT_EQ(u.data.size(), t.data.size());
    for (size_t i = 0; i < t.data.size(); ++i) {
      EXPECT_EQ(std::bit_cast<uint32_t>(u.data[i]), std::bit_cast<uint32_t>(t.data[i])) << i;
    }
  }
}

TEST(Safetensors, WriteRejectsShapeDataMismatch) {
  Safetensors st;
  st.tensors["w"] = Tensor{{2, 2}, {1, 2, 3}};
  const auto s = WriteSafetensors(::testing::TempDir() + "/bad.safetensors", st);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("'w'"));
}

TEST(Safetensors, MissingFileIsNotFound) {
  auto st = ReadSafetensors(::testing::TempDir() + "/does-not-exist.safetensors");
  EXPECT_EQ(st.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.status().message(), HasSubstr("does-not-exist"));
}

struct Malformed {
  const char* name;
  std::string bytes;
  const char* message;  // the error must mention this
};

std::vector<Malformed> MalformedFiles() {
  const auto tensor = [](const std::string& body) {
    return File(R"({"w":{)" + body + "}}", kTwoFloats);
  };
  return {
      {"shorter_than_length_field", std::string("\x10\x00\x00", 3), "8-byte header length"},
      {"truncated_header", Le64(64) + R"({"w":{"dtype":"F32")", "exceeds"},
      {"header_length_over_100mb", Le64(200'000'000) + "{}", "100 MB"},
      {"header_length_wraps", Le64(~uint64_t{0}) + "{}", "100 MB"},
      {"bad_json", File(R"({"w": {"dtype": "F32",,}})", ""), "JSON"},
      {"header_not_object", File("[1, 2]", ""), "JSON"},
      {"tensor_not_object", File(R"({"w": 3})", ""), "'w'"},
      {"wrong_dtype", tensor(R"("dtype":"F16","shape":[2],"data_offsets":[0,4])"), "F16"},
      {"dtype_not_string", tensor(R"("dtype":1,"shape":[2],"data_offsets":[0,8])"), "dtype"},
      {"missing_offsets", tensor(R"("dtype":"F32","shape":[2])"), "data_offsets"},
      {"offsets_out_of_range", tensor(R"("dtype":"F32","shape":[2],"data_offsets":[4,12])"), "out of range"},
      {"offsets_reversed", tensor(R"("dtype":"F32","shape":[1],"data_offsets":[8,4])"), "end before begin"},
      {"offsets_huge", tensor(R"("dtype":"F32","shape":[1],"data_offsets":[0,1e300])"), "data_offsets[1]"},
      {"one_offset", tensor(R"("dtype":"F32","shape":[1],"data_offsets":[0])"), "data_offsets"},
      {"wrong_byte_count", tensor(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"), "12 (4 bytes per F32)"},
      {"negative_dim", tensor(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])"), "shape[0]"},
      {"fractional_dim", tensor(R"("dtype":"F32","shape":[1.5],"data_offsets":[0,8])"), "shape[0]"},
      {"string_dim", tensor(R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])"), "shape[0]"},
      {"overflowing_shape", tensor(R"("dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8])"), "more than the file holds"},
      {"metadata_not_string", File(R"({"__metadata__":{"epochs":3}})", ""), "epochs"},
      {"metadata_not_object", File(R"({"__metadata__":"x"})", ""), "__metadata__"},
  };
}

TEST(Safetensors, MalformedFilesGiveErrors) {
  for (const Malformed& m : MalformedFiles()) {
    SCOPED_TRACE(m.name);
    auto st = ParseSafetensors(m.bytes);
    ASSERT_FALSE(st.ok());
    EXPECT_THAT(st.status().message(), HasSubstr(m.message));
  }
}

TEST(Safetensors, RandomCorruptionNeverCrashes) {
  Safetensors st;
  st.metadata["k"] = "v";
  st.tensors["a"] = Tensor{{2, 3}, {1, 2, 3, 4, 5, 6}};
  st.tensors["b"] = Tensor{{4}, {7, 8, 9, 10}};
  const std::string good = SerializeSafetensors(st);
  const uint32_t seed = 17;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) bad[rng() % bad.size()] = static_cast<char>(rng() & 0xff);
    if (rng() % 4 == 0) bad.resize(rng() % bad.size());  // truncation
    auto r = ParseSafetensors(bad);
    if (r.ok()) {
      ++parsed;
      for (const auto& [name, t] : r->tensors) {
        size_t count = 1;
        for (int64_t d : t.shape) count *= static_cast<size_t>(d);
        EXPECT_EQ(t.data.size(), count) << name;
      }
    }
  }
  // Most edits land in the data section (still valid) or break the header.
  EXPECT_GT(parsed, 0);
  EXPECT_LT(parsed, 3000);
}

}  // namespace
}  // namespace wavepool::nn
