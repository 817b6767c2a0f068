#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ from the
repository's own files (models/, specs/, tests/data/, docs/, deploy/) plus a
few hand-made inputs, and libFuzzer dictionaries (fuzz/dict/<target>.dict:
the JSON keys and enum names of proto/wavepool/v1/*.proto) for the JSON
targets. The output is committed (about 50 KB in all) and
scripts/fuzz.sh copies it into build-fuzz/ before a run, so nothing a run
finds lands in the source tree. Rerun after changing a format or a target's
input layout:

    python3 fuzz/make_corpus.py

Standard library only. Each seed is named after what it is.
"""
import json
import math
import pathlib
import re
import shutil
import struct
import wave

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"
DICT = ROOT / "fuzz" / "dict"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def small_spec():
    # fuzz/small_model.h, the server tests' small model.
    return {
        "name": "small", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
        "windowing": {"lengthSamples": 800, "hopSamples": 400},
        "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
                     "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "layout": "MEL_AS_FREQ"},
        "layers": [
            {"name": "conv1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3,
                                         "padTime": 1, "padFreq": 1}},
            {"name": "relu1", "relu": {}},
            {"name": "pool1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2}},
            {"name": "gap", "globalAvgPool": {}},
            {"name": "fc", "dense": {"outFeatures": 3}},
        ],
        "labels": ["a", "b", "c"],
    }


SERVED_SPECS = ["models/digits/1", "models/untrained-digits/1", "models/ecg-beats/1",
                "models/ecg-beats/2"]


def spec_seeds():
    for d in SERVED_SPECS:
        put("spec_fuzzer", d.replace("/", "_") + ".json", (ROOT / d / "spec.json").read_bytes())
    put("spec_fuzzer", "small.json", json.dumps(small_spec(), indent=1))
    # A 1-D layout and average pooling, which no shipped model uses.
    s = small_spec()
    s["frontEnd"]["layout"] = "MEL_AS_CHANNELS"
    s["frontEnd"]["normalization"] = "PER_WINDOW"
    s["layers"] = [
        {"name": "conv1", "conv1d": {"outChannels": 8, "kernel": 3, "padding": 1}},
        {"name": "bn1", "batchNorm": {}},
        {"name": "relu1", "relu": {}},
        {"name": "pool1", "avgPool1d": {"kernel": 2, "stride": 1}},
        {"name": "gmp", "globalMaxPool": {}},
        {"name": "flat", "flatten": {}},
        {"name": "fc", "dense": {"outFeatures": 3}},
        {"name": "sm", "softmax": {}},
    ]
    put("spec_fuzzer", "small_conv1d.json", json.dumps(s, indent=1))


def pool_override_seeds():
    # Base index as in pool_override_fuzzer.cc: the served specs, then small.
    for i, d in enumerate(SERVED_SPECS + ["small"]):
        spec = small_spec() if d == "small" else json.loads((ROOT / d / "spec.json").read_text())
        lines = []
        for layer in spec["layers"]:
            op = next(k for k in layer if k != "name")
            if op in ("maxPool2d", "avgPool2d"):
                lines += [f"{layer['name']}.stride_time=1", f"{layer['name']}.kernel_freq=3",
                          f"{layer['name']}.pad_freq=1"]
            elif op in ("maxPool1d", "avgPool1d"):
                lines += [f"{layer['name']}.stride=1", f"{layer['name']}.kernel=3",
                          f"{layer['name']}.padding=1"]
        put("pool_override_fuzzer", f"{i}_{d.replace('/', '_')}",
            bytes([i]) + "\n".join(lines).encode())
        put("pool_override_fuzzer", f"{i}_{d.replace('/', '_')}_unknown_layer",
            bytes([i]) + b"nope.stride_time=2\n")


def safetensors_bytes(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        shape, values = tensors[name]
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    def vals(n, scale):
        return [scale * math.sin(0.7 * i + 0.3) for i in range(n)]
    small = {
        "conv1.weight": ([4, 1, 3, 3], vals(36, 0.5)),
        "conv1.bias": ([4], vals(4, 0.1)),
        "fc.weight": ([3, 4], vals(12, 0.8)),
        "fc.bias": ([3], [0.0, 0.0, 0.0]),
    }
    put("safetensors_fuzzer", "small_model", safetensors_bytes(small))
    put("safetensors_fuzzer", "small_model_metadata",
        safetensors_bytes(small, {"format": "pt", "seed": "11"}))
    put("safetensors_fuzzer", "empty_tensor_and_scalar",
        safetensors_bytes({"e": ([0, 5], []), "s": ([], [1.5])}))


def wav_bytes(channels, rate, sample_width, frames):
    import io
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sample_width)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def float_wav(channels, rate, samples):
    data = struct.pack(f"<{len(samples)}f", *samples)
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 4, channels * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_seeds():
    put("wav_fuzzer", "fsdd_0_george_0.wav", (ROOT / "tests/data/fsdd/0_george_0.wav").read_bytes())
    tone = [math.sin(2 * math.pi * 440 * i / 8000) for i in range(200)]
    put("wav_fuzzer", "int16_mono_8k.wav",
        wav_bytes(1, 8000, 2, struct.pack("<200h", *[int(16000 * v) for v in tone])))
    put("wav_fuzzer", "int16_stereo_44k1.wav",
        wav_bytes(2, 44100, 2, struct.pack("<200h", *[int(9000 * v) for v in tone[:100] * 2])))
    put("wav_fuzzer", "uint8_mono_11k.wav",
        wav_bytes(1, 11025, 1, bytes(int(128 + 100 * v) for v in tone)))
    put("wav_fuzzer", "int24_mono_16k.wav",
        wav_bytes(1, 16000, 3, b"".join(int(4e6 * v).to_bytes(3, "little", signed=True)
                                        for v in tone)))
    put("wav_fuzzer", "float_mono_48k_beyond_full_scale.wav",
        float_wav(1, 48000, [1.5 * v for v in tone]))


def read_212(data, nsig):
    out = []
    for g in range(0, len(data) - 2, 3):
        b0, b1, b2 = data[g], data[g + 1], data[g + 2]
        for v in (b0 | ((b1 & 0x0F) << 8), b2 | ((b1 & 0xF0) << 4)):
            out.append(v - 0x1000 if v & 0x800 else v)
    return [out[s::nsig] for s in range(nsig)]


def wfdb_excerpt(record, frames, keep_nsamp=True):
    """The record's first `frames` frames: header with NSAMP and checksums
    recomputed (header(5): 16-bit sum of each signal), line ends kept."""
    hea = (ROOT / "tests/data/mitdb" / f"{record}.hea").read_bytes().decode()
    dat = (ROOT / "tests/data/mitdb" / f"{record}.dat").read_bytes()
    eol = "\r\n" if "\r\n" in hea else "\n"
    lines = hea.split(eol)
    rec = lines[0].split()
    nsig = int(rec[1])
    dat = dat[: frames * nsig * 3 // 2]
    signals = read_212(dat, nsig)
    rec[3] = str(frames)
    out = [" ".join(rec if keep_nsamp else rec[:3])]
    s = 0
    for line in lines[1:]:
        if line and not line.startswith("#") and s < nsig:
            f = line.split(" ", 8)
            total = sum(signals[s]) & 0xFFFF
            f[6] = str(total - 0x10000 if total & 0x8000 else total)
            line = " ".join(f)
            s += 1
        out.append(line)
    return eol.join(out).encode(), dat


def wfdb_seeds():
    for record, frames in (("101", 200), ("208", 120)):
        hea, dat = wfdb_excerpt(record, frames)
        put("wfdb_record_fuzzer", f"{record}_{frames}_frames", hea + b"\0" + dat)
    hea, dat = wfdb_excerpt("208", 50, keep_nsamp=False)
    put("wfdb_record_fuzzer", "208_no_nsamp", hea + b"\0" + dat)
    put("wfdb_record_fuzzer", "header_only",
        b"rec 1 250/1000(0) 10 12:00:00 01/01/2000\nrec.dat 212x1:0+0 100(5)/uV 12 0 0 0 0 lead\n")
    for record in ("101", "208"):
        put("wfdb_annotations_fuzzer", f"{record}.atr",
            (ROOT / "tests/data/mitdb" / f"{record}.atr").read_bytes())


def config_seeds():
    put("server_config_fuzzer", "config.example.json", (ROOT / "docs/config.example.json").read_bytes())
    put("server_config_fuzzer", "kubernetes_base.json",
        (ROOT / "deploy/kubernetes/base/config.json").read_bytes())
    put("server_config_fuzzer", "empty_object", b"{}")
    put("server_config_fuzzer", "file_and_flags",
        b'{"address": "[::]:50051", "models": [{"name": "digits"}]}\0'
        b'{"workers": 2, "models": [{"name": "ecg-beats", "version_policy": "specific", '
        b'"versions": [2]}], "limits": {"idle_timeout_s": 0}}')


def auth_seeds():
    # First byte: bit 0 = the text is the environment variable, bit 1 = an admin call.
    text = (b"# tokens for the fuzz seed\nabcdefghijklmnop0123 *\n"
            b"admintoken-xyz-000111 admin *\nreader-000-111-222 model:digits model:ecg-beats\n")
    put("auth_fuzzer", "file_model_scope", b"\x00" + text + b"\0Bearer reader-000-111-222\0digits")
    put("auth_fuzzer", "file_admin_call", b"\x02" + text + b"\0Bearer admintoken-xyz-000111\0")
    put("auth_fuzzer", "file_unknown_token", b"\x00" + text + b"\0Bearer not-a-configured-token-000\0x")
    put("auth_fuzzer", "variable_entries",
        b"\x01tok-a-1234567890abc;tok-b-0987654321 model:small\0bearer tok-b-0987654321\0small")


def http_seeds():
    for name, request in (
            ("get_metrics", b"GET /metrics HTTP/1.1\r\nHost: localhost:9090\r\nAccept: */*\r\n\r\n"),
            ("head_healthz_lf", b"HEAD /healthz HTTP/1.0\n\n"),
            ("get_readyz_query", b"GET /readyz?verbose=1 HTTP/1.1\r\n\r\n"),
            ("post", b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
            ("http2", b"GET / HTTP/2\r\n\r\n"),
            ("malformed_line", b"GET  /metrics HTTP/1.1\r\n\r\n"),
            ("incomplete", b"GET /metrics HTTP/1.1\r\nHost: x\r\n")):
        put("http_fuzzer", name, request)


class Fdp:
    """Writes bytes that FuzzedDataProvider (LLVM 14) reads back as the given
    values: ConsumeBytes from the front, integers from the back."""

    def __init__(self):
        self.front, self.back = bytearray(), bytearray()

    def int_in_range(self, lo, hi, value, size=8):
        rng, v = hi - lo, value - lo
        assert 0 <= v <= rng
        n, off = 0, 0
        while off < size * 8 and (rng >> off) > 0:
            n, off = n + 1, off + 8
        self.back += v.to_bytes(n, "big")

    def boolean(self, b):
        self.int_in_range(0, 255, int(b), 1)

    def u32(self, v):
        self.int_in_range(0, 2**32 - 1, v, 4)

    def i16(self, v):
        self.int_in_range(-32768, 32767, v, 2)

    def probability_f32(self, p):
        self.u32(round(p * (2**32 - 1)))

    def data(self, b):
        self.front += b

    def bytes(self):
        return bytes(self.front) + bytes(reversed(self.back))


# Operations of stream_fuzzer.cc (the switch in LLVMFuzzerTestOneInput).
OP_CONFIG, OP_SERVED, OP_PCM, OP_VALUES, OP_BOTH, OP_NO_PCM_OR_VALUES, OP_EMPTY, OP_RAW, \
    OP_SIGNAL, OP_HALF_CLOSE = range(10)
# ModelRepository::List order: by name, then version.
SERVED = ["ecg-beats/1", "ecg-beats/2", "small/1", "untrained-digits/1"]
MODELS = ["small", "untrained-digits", "ecg-beats", "", "digits", "small "]
RATES = [8000, 16000, 44100, 48000, 360, 250, 500, 1000, 11025, 22050, 50, 768000, 8000.5, 100,
         7999.999, 32000]


def op(f, code):
    f.int_in_range(0, 9, code, 4)


def served_config(f, model, version=False, int16=False, channels=None, top_k=None):
    op(f, OP_SERVED)
    f.int_in_range(0, len(SERVED) - 1, SERVED.index(model))
    f.boolean(version)
    f.boolean(int16)
    f.boolean(channels is not None)
    if channels is not None:
        f.int_in_range(1, 3, channels, 4)
    f.boolean(top_k is not None)
    if top_k is not None:
        f.int_in_range(1, 12, top_k, 4)


def fuzzed_config(f, model, version, rate, channels=None, encoding=0, top_k=None, adc=0):
    op(f, OP_CONFIG)
    f.int_in_range(0, len(MODELS), MODELS.index(model))
    f.int_in_range(-1, 3, version)
    f.int_in_range(0, 2, 0, 4)
    f.int_in_range(0, len(RATES) - 1, RATES.index(rate))
    f.boolean(channels is not None)
    if channels is not None:
        f.int_in_range(0, 40, channels, 4)
    f.int_in_range(0, 3, encoding, 4)
    f.boolean(top_k is not None)
    if top_k is not None:
        f.int_in_range(0, 12, top_k, 4)
    f.int_in_range(0, 3, adc, 4)


def signal(f, rate, frames, source, offset=0, gain=1.0, as_values=True):
    op(f, OP_SIGNAL)
    cap = int(min(max(65536 * rate / 8000.0, 1.0), 65536))
    f.int_in_range(0, cap, frames)
    f.int_in_range(0, 3, source, 4)
    f.u32(offset)
    f.probability_f32(gain / 4.0)
    f.boolean(as_values)


def pcm(f, data):
    op(f, OP_PCM)
    f.int_in_range(0, 4096, len(data))
    f.data(data)


def values(f, vals):
    op(f, OP_VALUES)
    f.int_in_range(0, 2048, len(vals))
    f.int_in_range(0, 7, 1, 4)  # not "any bits": int16 / 32768
    for v in vals:
        f.i16(v)


def raw(f, message):
    op(f, OP_RAW)
    f.int_in_range(0, 1024, len(message))
    f.data(message)


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire, payload):
    key = varint((number << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def stream_seeds():
    tone16 = [int(8000 * math.sin(2 * math.pi * 300 * i / 16000)) for i in range(400)]
    f = Fdp()
    served_config(f, "small/1", top_k=3)
    signal(f, 8000, 6000, 0, offset=4000)
    signal(f, 8000, 3000, 0, offset=10000, as_values=False)
    op(f, OP_HALF_CLOSE)
    put("stream_fuzzer", "small_speech_values_then_pcm", f.bytes())

    f = Fdp()
    served_config(f, "untrained-digits/1", int16=True, top_k=2)
    signal(f, 8000, 20000, 0, offset=2000, as_values=False)
    op(f, OP_HALF_CLOSE)
    put("stream_fuzzer", "untrained_digits_speech_int16", f.bytes())

    for model, int16 in (("ecg-beats/2", True), ("ecg-beats/1", False)):
        f = Fdp()
        served_config(f, model, version=True, int16=int16)
        for k in range(3):
            signal(f, 360, 2900, 1, offset=2900 * k, as_values=not int16)
        op(f, OP_HALF_CLOSE)
        put("stream_fuzzer", f"{model.replace('/', '_')}_ecg_{'int16' if int16 else 'values'}",
            f.bytes())

    f = Fdp()
    fuzzed_config(f, "small", 0, 16000, channels=2, encoding=1)
    pcm(f, struct.pack(f"<{len(tone16)}h", *tone16))
    values(f, tone16[:200])
    op(f, OP_NO_PCM_OR_VALUES)
    op(f, OP_HALF_CLOSE)
    put("stream_fuzzer", "small_16k_stereo_int16_bad_chunk", f.bytes())

    f = Fdp()
    fuzzed_config(f, "ecg-beats", 1, 250, encoding=1, top_k=5, adc=1)
    signal(f, 250, 2000, 1, as_values=False)
    op(f, OP_HALF_CLOSE)
    put("stream_fuzzer", "ecg_beats_250hz_resampled", f.bytes())

    # Serialized requests straight from the input: a config, then values.
    config = field(1, 2, b"small") + field(3, 1, struct.pack("<d", 11025.0)) + \
        field(6, 0, varint(2))
    samples = field(2, 2, struct.pack("<200f", *[v / 32768 for v in tone16[:200]]))
    f = Fdp()
    raw(f, field(1, 2, config))
    raw(f, field(2, 2, samples))
    op(f, OP_HALF_CLOSE)
    put("stream_fuzzer", "serialized_requests", f.bytes())

    f = Fdp()
    values(f, tone16[:10])  # samples before any config
    put("stream_fuzzer", "samples_before_config", f.bytes())


def proto_words(proto):
    """Field names (snake_case and the JSON mapping's lowerCamelCase) and enum
    value names of a .proto file."""
    text = (ROOT / "proto/wavepool/v1" / proto).read_text()
    fields = re.findall(r"^\s*(?:optional |repeated )?[A-Za-z0-9_.]+ ([a-z][a-z0-9_]*) = \d+;",
                        text, re.M)
    enums = re.findall(r"^\s*([A-Z][A-Z0-9_]*) = \d+;", text, re.M)
    words = set(enums)
    for f in fields:
        words.add(f)
        parts = f.split("_")
        words.add(parts[0] + "".join(p.capitalize() for p in parts[1:]))
    return sorted(words)


def write_dict(target, words):
    DICT.mkdir(parents=True, exist_ok=True)
    lines = [f'"\\"{w}\\""' if quoted else f'"{w}"' for w, quoted in words]
    (DICT / f"{target}.dict").write_text(
        f"# libFuzzer dictionary for {target}, made by fuzz/make_corpus.py\n" +
        "\n".join(lines) + "\n")


def dictionaries():
    write_dict("spec_fuzzer", [(w, True) for w in proto_words("model_spec.proto")])
    write_dict("server_config_fuzzer", [(w, True) for w in proto_words("server_config.proto")] +
               [(w, True) for w in ("latest", "all", "specific", "json", "text")])
    write_dict("pool_override_fuzzer",
               [(w, False) for w in ("kernel_time", "kernel_freq", "stride_time", "stride_freq",
                                     "pad_time", "pad_freq", "kernel", "stride", "padding",
                                     "pool1", "pool2", "pool3", "gap", "conv1", "fc")])
    write_dict("http_fuzzer",
               [(w, False) for w in ("GET", "HEAD", "POST", "/metrics", "/healthz", "/readyz",
                                     "HTTP/1.1", "HTTP/1.0", "HTTP/", "?")] +
               [("\\x0d\\x0a", False), ("\\x0d\\x0a\\x0d\\x0a", False), ("\\x0a\\x0a", False)])


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    dictionaries()
    spec_seeds()
    pool_override_seeds()
    safetensors_seeds()
    wav_seeds()
    wfdb_seeds()
    config_seeds()
    auth_seeds()
    http_seeds()
    stream_seeds()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    count = sum(1 for p in OUT.rglob("*") if p.is_file())
    print(f"make_corpus: {count} seeds, {total} bytes in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
