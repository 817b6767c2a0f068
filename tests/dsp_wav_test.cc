// WAV reading and writing through libsndfile, checked against hand-built bytes.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dsp/wav.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) /
          ("dsp_wav_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

void PutLe(std::string* out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A canonical 44-byte-header WAV, written byte by byte from the RIFF spec.
std::string WavBytes(uint16_t format, uint16_t channels, uint32_t rate, uint16_t bits,
                     const std::string& data) {
  std::string b = "RIFF";
  PutLe(&b, 36 + static_cast<uint32_t>(data.size()), 4);
  b += "WAVEfmt ";
  PutLe(&b, 16, 4);
  PutLe(&b, format, 2);  // 1 = integer PCM, 3 = IEEE float
  PutLe(&b, channels, 2);
  PutLe(&b, rate, 4);
  PutLe(&b, rate * channels * bits / 8, 4);
  PutLe(&b, channels * bits / 8, 2);
  PutLe(&b, bits, 2);
  b += "data";
  PutLe(&b, static_cast<uint32_t>(data.size()), 4);
  return b + data;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(ReadAudio, DecodesHandBuiltInt16Stereo) {
  // Frames (L, R): (16384, -32768), (-1, 32767): full scale is 32768.
  std::string data;
  for (int16_t v : {16384, -32768, -1, 32767}) PutLe(&data, static_cast<uint16_t>(v), 2);
  const std::string path = TempPath("int16_stereo.wav");
  WriteFile(path, WavBytes(1, 2, 22050, 16, data));
  absl::StatusOr<Audio> audio = ReadAudio(path);
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_EQ(audio->sample_rate_hz, 22050);
  EXPECT_EQ(audio->channels, 2);
  EXPECT_EQ(audio->frames(), 2u);
  EXPECT_EQ(audio->samples, (std::vector<float>{0.5f, -1.0f, -1.0f / 32768, 32767.0f / 32768}));
  EXPECT_EQ(Downmix(*audio), (std::vector<float>{-0.25f, (32767.0f / 32768 - 1.0f / 32768) / 2}));
  std::filesystem::remove(path);
}

TEST(ReadAudio, DecodesHandBuiltFloat32Mono) {
  const std::vector<float> values = {0.25f, -0.75f, 1e-3f};
  std::string data;
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    PutLe(&data, bits, 4);
  }
  const std::string path = TempPath("float_mono.wav");
  WriteFile(path, WavBytes(3, 1, 8000, 32, data));
  absl::StatusOr<Audio> audio = ReadAudio(path);
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_EQ(audio->sample_rate_hz, 8000);
  EXPECT_EQ(audio->channels, 1);
  EXPECT_EQ(audio->samples, values);
  std::filesystem::remove(path);
}

// Written as round(x * 32768), read as v / 32768: within half a step.
TEST(WriteWav16, RoundTripsMonoAndStereoWithin16BitQuantisation) {
  for (int channels : {1, 2}) {
    Audio audio;
    audio.sample_rate_hz = 16000;
    audio.channels = channels;
    const size_t frames = 16000 + 37;  // more than one 4096-frame read
    for (size_t i = 0; i < frames * channels; ++i) {
      audio.samples.push_back(static_cast<float>(0.9 * std::sin(0.001 * i * i)));
    }
    const std::string path = TempPath("roundtrip" + std::to_string(channels) + ".wav");
    ASSERT_TRUE(WriteWav16(path, audio).ok());
    absl::StatusOr<Audio> back = ReadAudio(path);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->sample_rate_hz, 16000);
    EXPECT_EQ(back->channels, channels);
    ASSERT_EQ(back->samples.size(), audio.samples.size());
    for (size_t i = 0; i < audio.samples.size(); ++i) {
      ASSERT_NEAR(back->samples[i], audio.samples[i], 0.5 / 32768) << "sample " << i;
    }
    std::filesystem::remove(path);
  }
}

// The bytes of the data chunk, decoded by hand: rounding to nearest (ties to
// even), clipping beyond full scale instead of wrapping.
TEST(WriteWav16, WritesRoundedClippedInt16) {
  Audio audio;
  audio.sample_rate_hz = 8000;
  audio.channels = 1;
  audio.samples = {0.5f, -1.0f, 1.0f, 1.5f, -1.5f, 1.0f / 65536, 3.0f / 65536, -0.3f};
  const std::vector<int16_t> want = {16384, -32768, 32767, 32767, -32768, 0, 2, -9830};
  const std::string path = TempPath("int16.wav");
  ASSERT_TRUE(WriteWav16(path, audio).ok());
  std::ifstream f(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t data = bytes.find("data");
  ASSERT_NE(data, std::string::npos);
  ASSERT_EQ(bytes.size(), data + 8 + 2 * want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto lo = static_cast<uint8_t>(bytes[data + 8 + 2 * i]);
    const auto hi = static_cast<uint8_t>(bytes[data + 9 + 2 * i]);
    EXPECT_EQ(static_cast<int16_t>(lo | (hi << 8)), want[i]) << "sample " << i;
  }
  std::filesystem::remove(path);
}

TEST(ReadAudio, MissingFileIsNotFoundAndNamesIt) {
  const std::string path = TempPath("no_such_file.wav");
  absl::StatusOr<Audio> audio = ReadAudio(path);
  EXPECT_EQ(audio.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(audio.status().message(), "audio file '" + path + "' does not exist");
}

TEST(ReadAudio, GarbageIsInvalidArgumentAndNamesTheFile) {
  const std::string path = TempPath("garbage.wav");
  WriteFile(path, "this is not audio, just text pretending to be a wav file");
  absl::StatusOr<Audio> audio = ReadAudio(path);
  EXPECT_EQ(audio.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(audio.status().message());
  EXPECT_EQ(message.rfind("cannot read audio file '" + path + "': ", 0), 0u) << message;
  std::filesystem::remove(path);
}

TEST(WriteWav16, RejectsBadAudioWithTheReason) {
  const std::string path = TempPath("bad.wav");
  Audio audio;
  audio.sample_rate_hz = 8000;
  audio.channels = 0;
  EXPECT_EQ(WriteWav16(path, audio).message(),
            "cannot write '" + path + "': channels (0) must be > 0");
  audio.channels = 2;
  audio.samples = {0.1f, 0.2f, 0.3f};
  EXPECT_EQ(WriteWav16(path, audio).message(),
            "cannot write '" + path + "': 3 samples is not a multiple of 2 channels");
  audio.samples = {0.1f, NAN};
  EXPECT_EQ(WriteWav16(path, audio).message(), "cannot write '" + path + "': sample 1 is nan");
  audio.samples = {0.1f, 0.2f};
  audio.sample_rate_hz = 8000.5;
  EXPECT_EQ(WriteWav16(path, audio).message(),
            "cannot write '" + path + "': sample_rate_hz (8000.5) must be a whole number >= 1 for WAV");
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(WriteWav16, UnwritablePathNamesTheFile) {
  const std::string path = TempPath("no_such_dir") + "/out.wav";
  Audio audio;
  audio.sample_rate_hz = 8000;
  audio.channels = 1;
  audio.samples = {0.0f};
  const absl::Status status = WriteWav16(path, audio);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("'" + path + "'"), std::string::npos)
      << status.message();
}

TEST(Downmix, AveragesChannels) {
  Audio audio;
  audio.channels = 3;
  audio.samples = {0.3f, 0.6f, 0.9f, -1.0f, 0.0f, 1.0f};
  const std::vector<float> mono = Downmix(audio);
  ASSERT_EQ(mono.size(), 2u);
  EXPECT_FLOAT_EQ(mono[0], 0.6f);
  EXPECT_FLOAT_EQ(mono[1], 0.0f);
  EXPECT_TRUE(Downmix(Audio{}).empty());
}

}  // namespace
}  // namespace wavepool::dsp
