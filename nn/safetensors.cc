#include "nn/safetensors.h"

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace wavepool::nn {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;

// The reference implementation's limit: a header above 100 MB is an attack or
// a corrupt file, not a model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Integers above 2^53 do not survive the JSON number (double) round trip.
constexpr double kMaxJsonInt = 9007199254740992.0;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors: ", what));
}

absl::StatusOr<uint64_t> JsonUint(const Value& v, absl::string_view what) {
  if (v.kind_case() != Value::kNumberValue) return Bad(absl::StrCat(what, " is not a number"));
  const double d = v.number_value();
  if (!(d >= 0) || d > kMaxJsonInt || std::floor(d) != d) {
    return Bad(absl::StrCat(what, " (", d, ") is not a non-negative integer"));
  }
  return static_cast<uint64_t>(d);
}

absl::StatusOr<Tensor> ParseTensor(const std::string& name, const Value& info,
                                   std::string_view data) {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (info.kind_case() != Value::kStructValue) return Bad(absl::StrCat(where, " is not an object"));
  const auto& f = info.struct_value().fields();
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!f.contains(key)) return Bad(absl::StrCat(where, " has no \"", key, "\""));
  }
  const Value& dtype = f.at("dtype");
  if (dtype.kind_case() != Value::kStringValue) return Bad(absl::StrCat(where, ": dtype is not a string"));
  if (dtype.string_value() != "F32") {
    return absl::UnimplementedError(absl::StrCat("safetensors: ", where, " has dtype ",
                                                 dtype.string_value(),
                                                 "; only F32 is supported (convert it to float32)"));
  }
  const Value& shape = f.at("shape");
  if (shape.kind_case() != Value::kListValue) return Bad(absl::StrCat(where, ": shape is not a list"));
  Tensor t;
  for (int i = 0; i < shape.list_value().values_size(); ++i) {
    auto dim = JsonUint(shape.list_value().values(i), absl::StrCat(where, " shape[", i, "]"));
    if (!dim.ok()) return dim.status();
    t.shape.push_back(static_cast<int64_t>(*dim));
  }
  // Element count with an overflow check: a product above the data size is
  // wrong whatever it is exactly. A zero dimension makes an empty tensor.
  uint64_t count = 1;
  bool overflow = false;
  for (int64_t d : t.shape) {
    const auto dim = static_cast<uint64_t>(d);
    if (dim == 0) {
      count = 0;
      overflow = false;
      break;
    }
    if (count > data.size() / dim) overflow = true;
    if (!overflow) count *= dim;
  }
  const Value& offsets = f.at("data_offsets");
  if (offsets.kind_case() != Value::kListValue || offsets.list_value().values_size() != 2) {
    return Bad(absl::StrCat(where, ": data_offsets is not a list [begin, end]"));
  }
  auto begin = JsonUint(offsets.list_value().values(0), absl::StrCat(where, " data_offsets[0]"));
  if (!begin.ok()) return begin.status();
  auto end = JsonUint(offsets.list_value().values(1), absl::StrCat(where, " data_offsets[1]"));
  if (!end.ok()) return end.status();
  if (*end < *begin) {
    return Bad(absl::StrCat(where, ": data_offsets [", *begin, ", ", *end, "] end before begin"));
  }
  if (*end > data.size()) {
    return Bad(absl::StrCat(where, ": data_offsets [", *begin, ", ", *end,
                            "] out of range of the ", data.size(), "-byte data section"));
  }
  const uint64_t bytes = *end - *begin;
  if (overflow || count > data.size() / 4 || bytes != 4 * count) {
    return Bad(absl::StrCat(where, ": ", bytes, " bytes of data but its shape needs ",
                            overflow ? std::string("more than the file holds")
                                     : absl::StrCat(4 * count, " (4 bytes per F32)")));
  }
  t.data.resize(count);
  if (count > 0) std::memcpy(t.data.data(), data.data() + *begin, bytes);
  if constexpr (std::endian::native == std::endian::big) {
    for (float& v : t.data) {
      v = std::bit_cast<float>(__builtin_bswap32(std::bit_cast<uint32_t>(v)));
    }
  }
  return t;
}

// JSON string literal with the escapes RFC 8259 requires.
void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (u < 0x20) {
      absl::StrAppendFormat(out, "\\u%04x", u);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

}  // namespace

absl::StatusOr<Safetensors> ParseSafetensors(std::string_view bytes) {
  if (bytes.size() < 8) {
    return Bad(absl::StrCat("file is ", bytes.size(), " bytes, shorter than the 8-byte header length"));
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > kMaxHeaderBytes) {
    return Bad(absl::StrCat("header length ", n, " exceeds the 100 MB limit"));
  }
  if (n > bytes.size() - 8) {
    return Bad(absl::StrCat("header length ", n, " exceeds the ", bytes.size() - 8,
                            " bytes after the length field (truncated file?)"));
  }
  const std::string_view header = bytes.substr(8, n);
  const std::string_view data = bytes.substr(8 + n);
  Struct root;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(header.data(), header.size()), &root, options);
  if (!st.ok()) return Bad(absl::StrCat("header is not a JSON object: ", st.message().ToString()));

  Safetensors out;
  for (const auto& [name, value] : root.fields()) {
    if (name == "__metadata__") {
      if (value.kind_case() != Value::kStructValue) return Bad("__metadata__ is not an object");
      for (const auto& [key, v] : value.struct_value().fields()) {
        if (v.kind_case() != Value::kStringValue) {
          return Bad(absl::StrCat("__metadata__ value of '", key, "' is not a string"));
        }
        out.metadata[key] = v.string_value();
      }
      continue;
    }
    auto t = ParseTensor(name, value, data);
    if (!t.ok()) return t.status();
    out.tensors[name] = *std::move(t);
  }
  return out;
}

absl::StatusOr<Safetensors> ReadSafetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  auto st = ParseSafetensors(ss.str());
  if (!st.ok()) {
    return absl::Status(st.status().code(), absl::StrCat(path, ": ", st.status().message()));
  }
  return st;
}

std::string SerializeSafetensors(const Safetensors& st) {
  // Compact JSON as the reference (serde_json) writes it: "__metadata__" first,
  // then the tensors in key order (std::map), data contiguous in that order.
  std::string header = "{";
  bool first = true;
  if (!st.metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [k, v] : st.metadata) {
      if (!first) header += ',';
      first = false;
      AppendJsonString(k, &header);
      header += ':';
      AppendJsonString(v, &header);
    }
    header += '}';
    first = false;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : st.tensors) {
    if (!first) header += ',';
    first = false;
    AppendJsonString(name, &header);
    header += ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) header += ',';
      absl::StrAppend(&header, t.shape[i]);
    }
    const uint64_t bytes = 4 * uint64_t{t.data.size()};
    absl::StrAppend(&header, "],\"data_offsets\":[", offset, ",", offset + bytes, "]}");
    offset += bytes;
  }
  header += '}';
  // Padded with spaces to a multiple of 8 so the data section is 8-byte aligned.
  header.append((8 - header.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + header.size() + offset);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += header;
  for (const auto& [name, t] : st.tensors) {
    for (float v : t.data) {
      const uint32_t u = std::bit_cast<uint32_t>(v);
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
    }
  }
  return out;
}

absl::Status WriteSafetensors(const std::string& path, const Safetensors& st) {
  for (const auto& [name, t] : st.tensors) {
    uint64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has a negative dimension"));
      count *= static_cast<uint64_t>(d);
    }
    if (count != t.data.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' holds ", t.data.size(),
                                                     " values but its shape needs ", count));
    }
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", path));
  const std::string bytes = SerializeSafetensors(st);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("error writing ", path));
  return absl::OkStatus();
}

}  // namespace wavepool::nn
