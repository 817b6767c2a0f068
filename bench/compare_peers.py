#!/usr/bin/python3
"""Our network and front end side by side with what a user would pick instead.

For each model folder (spec.json + weights.safetensors) this builds the same
network in torch.nn with the same weights, checks that PyTorch, our C++ path
(bench_models --dump-logits) and ONNX Runtime compute the same outputs on
random inputs, then times, on one thread, at each batch size:
  ours       bench_models (Model::Run: conv + ReLU + pooling on oneDNN JIT
             kernels, nn/conv_dnnl.h; folded batch-norm)
  torch      PyTorch eager, model.eval() under torch.inference_mode()
  torch-jit  torch.jit.trace + torch.jit.optimize_for_inference (frozen,
             batch-norm folded): PyTorch's own best CPU inference path
  ORT        ONNX Runtime (npm onnxruntime-node) on torch.onnx.export's graph,
             one export per batch size (static shapes), graph optimisation "all"
For audio models it also times our streaming log-mel front end (10 ms chunks
into one long stream) against a straightforward numpy/scipy reference (frame
the whole signal, Hann, float32 rfft, power, Slaney mel matrix, log, windows,
per-window normalisation), after checking both give the same features.

Rates are per CPU second of the process doing the work (all its threads), so
other jobs on the machine slow the wall clock but not the figure; each is the
best of --repeats runs (the least disturbed), medians go to --json. Ratios are
what to quote. Run it with Debian's interpreter, which has python3-torch,
numpy, scipy and python3-onnx:

  /usr/bin/python3 bench/compare_peers.py --build-dir build [--json peers.json]

It installs onnxruntime-node (pinned) into .tools/peers/ (git-ignored) when
absent; ONNXRUNTIME_NODE_INSTALL=skip keeps its install script from fetching
CUDA binaries that the CPU run does not use.
"""
import os

# One thread everywhere, before numpy or torch load their BLAS / OpenMP pools;
# inherited by bench_models (OpenBLAS) and node.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.fft  # noqa: E402
import torch  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_NODE_VERSION = "1.30.0"
ORT_PREFIX = os.path.join(REPO, ".tools", "peers")


class Mismatch(Exception):
    """Two implementations disagree beyond the stated tolerance."""


# ---------------------------------------------------------------- model files

def read_safetensors(path):
    """name -> float32 array: 8-byte LE header length, JSON header, raw data."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}; only F32 is read")
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[base + begin:base + end], dtype="<f4")
        tensors[name] = arr.reshape(info["shape"]).astype(np.float32)
    return tensors


def field(d, snake, default=0):
    """A spec field by its proto name; the JSON may use camelCase or snake_case."""
    parts = snake.split("_")
    camel = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    for key in (camel, snake):
        if key in d:
            return d[key]
    return default


def one_if_zero(v):
    return v if v else 1


def input_shape(spec):
    """[C, H, W] as nn/spec.cc InputShape()."""
    if field(spec, "kind") in ("BEAT_WINDOWS", 2):
        bw = field(spec, "beat_windowing", {})
        rate = field(spec, "sample_rate_hz")
        rnd = lambda x: int(math.floor(x + 0.5))  # llround for x > 0  # noqa: E731
        w = rnd(field(bw, "before_s") * rate) + rnd(field(bw, "after_s") * rate)
        c = 1 + (1 if field(bw, "template_context", False) else 0) + (4 if field(bw, "rr_context", False) else 0)
        return [c, 1, w]
    fe = field(spec, "front_end", {})
    stft, mel = field(fe, "stft", {}), field(fe, "mel", {})
    win = field(spec, "windowing", {})
    frames = (field(win, "length_samples") - field(stft, "frame_length")) // field(stft, "frame_hop") + 1
    bands = field(mel, "num_bands")
    if field(fe, "layout") in ("MEL_AS_CHANNELS", 2):
        return [bands, 1, frames]
    return [1, bands, frames]


# ------------------------------------------------------------- torch network

OP_KEYS = ["conv1d", "conv2d", "max_pool1d", "avg_pool1d", "max_pool2d", "avg_pool2d",
           "global_avg_pool", "global_max_pool", "dense", "relu", "batch_norm", "dropout",
           "flatten", "softmax"]


def layer_op(layer):
    for snake in OP_KEYS:
        parts = snake.split("_")
        camel = parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
        for key in (camel, snake):
            if key in layer:
                return snake, layer[key]
    raise ValueError(f"layer {layer.get('name')!r} has no op this script knows")


class Squeeze(torch.nn.Module):
    """[N, C, 1, W] -> [N, C, W]: a 1-D network takes torch's 1-D layout (same bytes)."""

    def forward(self, x):
        return x.squeeze(2)


def pool_module(kind, k, s, p, count_include_pad, two_d):
    """Max/avg pooling, floor mode. torch wants pad <= kernel / 2; larger pads
    (our specs allow pad < kernel) are done as an explicit pad first when that
    means the same thing."""
    if not two_d:
        k, s, p = k[-1:], s[-1:], p[-1:]
    fits = all(pi <= ki // 2 for pi, ki in zip(p, k))
    pad_first = None
    if not fits:
        if kind == "avg" and not count_include_pad:
            raise NotImplementedError("average pooling with pad > kernel / 2 and count_include_pad false")
        flat = []
        for pi in reversed(p):  # F.pad order: last axis first
            flat += [pi, pi]
        pad_first = torch.nn.ConstantPad2d(flat, -math.inf if kind == "max" else 0.0) if two_d else \
            torch.nn.ConstantPad1d(flat, -math.inf if kind == "max" else 0.0)
        p = [0] * len(p)
    k, s, p = (tuple(k), tuple(s), tuple(p)) if two_d else (k[0], s[0], p[0])
    if kind == "max":
        mod = (torch.nn.MaxPool2d if two_d else torch.nn.MaxPool1d)(k, s, p)
    else:
        mod = (torch.nn.AvgPool2d if two_d else torch.nn.AvgPool1d)(k, s, p, count_include_pad=count_include_pad)
    return [pad_first, mod] if pad_first is not None else [mod]


def build_torch(spec, tensors):
    """The spec's network as torch.nn.Sequential with the file's weights.

    Semantics follow nn/spec_internal.cc and nn/kernels.h: NCHW with H =
    frequency, W = time; conv1d/pool1d act on W; conv padding symmetric;
    pooling floor mode, stride 0 = kernel, max ignores padding; batch-norm
    epsilon 0 = 1e-5; dense flattens C*H*W row-major; dropout is identity.
    A network with no 2-D layer runs as torch 1-D layers on [N, C, W].
    Returns (module, input shape [C, H, W], torch input shape without batch).
    """
    shape = input_shape(spec)
    layers = spec["layers"]
    two_d = any(layer_op(L)[0] in ("conv2d", "max_pool2d", "avg_pool2d") for L in layers)
    if not two_d and shape[1] != 1:
        raise ValueError(f"a 1-D network needs input H == 1, the spec gives {shape}")
    used = set()

    def weight(name, want):
        if name not in tensors:
            raise ValueError(f"tensor {name!r} is missing from the weights")
        t = tensors[name]
        if list(t.shape) != list(want):
            raise ValueError(f"tensor {name!r} has shape {list(t.shape)}, the spec needs {list(want)}")
        used.add(name)
        return torch.from_numpy(t.copy())

    mods = []
    flat = False  # the torch tensor is [N, features] (after a dense or global pool)
    c, h, w = shape
    for L in layers:
        op, p = layer_op(L)
        name = L["name"]
        if flat and op in ("conv1d", "conv2d", "max_pool1d", "avg_pool1d", "max_pool2d", "avg_pool2d"):
            raise NotImplementedError(f"layer {name!r}: a spatial layer after a dense / global pool")
        if op in ("conv1d", "conv2d"):
            out_c = field(p, "out_channels")
            if op == "conv2d":
                k = [field(p, "kernel_freq"), field(p, "kernel_time")]
                s = [one_if_zero(field(p, "stride_freq")), one_if_zero(field(p, "stride_time"))]
                pad = [field(p, "pad_freq"), field(p, "pad_time")]
                dil = [one_if_zero(field(p, "dilation_freq")), one_if_zero(field(p, "dilation_time"))]
            else:
                k, s = [1, field(p, "kernel")], [1, one_if_zero(field(p, "stride"))]
                pad, dil = [0, field(p, "padding")], [1, one_if_zero(field(p, "dilation"))]
            bias = not field(p, "no_bias", False)
            wshape = [out_c, c] + (k if op == "conv2d" else [k[1]])
            wt = weight(name + ".weight", wshape)
            if two_d:
                mod = torch.nn.Conv2d(c, out_c, tuple(k), tuple(s), tuple(pad), tuple(dil), bias=bias)
                wt = wt.reshape(out_c, c, k[0], k[1])
            else:
                mod = torch.nn.Conv1d(c, out_c, k[1], s[1], pad[1], dil[1], bias=bias)
            mod.weight.data.copy_(wt)
            if bias:
                mod.bias.data.copy_(weight(name + ".bias", [out_c]))
            mods.append(mod)
            h = (h + 2 * pad[0] - dil[0] * (k[0] - 1) - 1) // s[0] + 1
            w = (w + 2 * pad[1] - dil[1] * (k[1] - 1) - 1) // s[1] + 1
            c = out_c
        elif op in ("max_pool1d", "avg_pool1d", "max_pool2d", "avg_pool2d"):
            if op.endswith("2d"):
                k = [field(p, "kernel_freq"), field(p, "kernel_time")]
                s = [field(p, "stride_freq") or k[0], field(p, "stride_time") or k[1]]
                pad = [field(p, "pad_freq"), field(p, "pad_time")]
            else:
                k = [1, field(p, "kernel")]
                s = [1, field(p, "stride") or k[1]]
                pad = [0, field(p, "padding")]
            kind = "max" if op.startswith("max") else "avg"
            mods += pool_module(kind, k, s, pad, bool(field(p, "count_include_pad", False)), two_d)
            h = (h + 2 * pad[0] - k[0]) // s[0] + 1
            w = (w + 2 * pad[1] - k[1]) // s[1] + 1
        elif op in ("global_avg_pool", "global_max_pool"):
            avg = op == "global_avg_pool"
            if two_d:
                mods.append(torch.nn.AdaptiveAvgPool2d(1) if avg else torch.nn.AdaptiveMaxPool2d(1))
            else:
                mods.append(torch.nn.AdaptiveAvgPool1d(1) if avg else torch.nn.AdaptiveMaxPool1d(1))
            mods.append(torch.nn.Flatten())
            flat, h, w = True, 1, 1
        elif op == "dense":
            out_f = field(p, "out_features")
            bias = not field(p, "no_bias", False)
            if not flat:
                mods.append(torch.nn.Flatten())
            mod = torch.nn.Linear(c * h * w, out_f, bias=bias)
            mod.weight.data.copy_(weight(name + ".weight", [out_f, c * h * w]))
            if bias:
                mod.bias.data.copy_(weight(name + ".bias", [out_f]))
            mods.append(mod)
            flat, c, h, w = True, out_f, 1, 1
        elif op == "batch_norm":
            eps = field(p, "epsilon") or 1e-5
            mod = (torch.nn.BatchNorm2d if two_d and not flat else torch.nn.BatchNorm1d)(c, eps=eps)
            mod.weight.data.copy_(weight(name + ".weight", [c]))
            mod.bias.data.copy_(weight(name + ".bias", [c]))
            mod.running_mean.copy_(weight(name + ".running_mean", [c]))
            mod.running_var.copy_(weight(name + ".running_var", [c]))
            mods.append(mod)
        elif op == "relu":
            mods.append(torch.nn.ReLU())
        elif op == "dropout":
            mods.append(torch.nn.Dropout(field(p, "rate", 0.0)))
        elif op == "flatten":
            mods.append(torch.nn.Flatten())
            flat, c, h, w = True, c * h * w, 1, 1
        elif op == "softmax":
            if h != 1 or w != 1:
                raise ValueError(f"layer {name!r}: softmax needs H == W == 1")
            mods.append(torch.nn.Softmax(dim=1))
    if not flat:
        mods.append(torch.nn.Flatten())
    extra = sorted(set(tensors) - used)
    if extra:
        raise ValueError(f"the weights hold tensors no layer uses: {extra}")
    model = torch.nn.Sequential(*mods).eval()
    torch_in = shape if two_d else [shape[0], shape[2]]
    return model, shape, torch_in, c


# ---------------------------------------------------------------- checking

def check_close(name, got, ref, tol):
    """|got - ref| <= tol * max(1, max |ref|) everywhere, else Mismatch."""
    got, ref = np.asarray(got, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    if got.shape != ref.shape:
        raise Mismatch(f"{name}: {got.size} values vs {ref.size}")
    if not np.all(np.isfinite(got)):
        raise Mismatch(f"{name}: non-finite values")
    diff = float(np.max(np.abs(got - ref)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    if not diff <= tol * scale:
        raise Mismatch(f"{name}: max |diff| {diff:.3g} > {tol:g} x {scale:.3g}")
    return diff, scale


# ------------------------------------------------------------------ timing

def measure(once, units, args):
    """Mirrors bench_models.cc: warm-up, then repeats of >= repeat_s wall s."""
    def time_for(min_wall):
        n, w0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            once()
            n += 1
            wall = time.perf_counter() - w0
            if wall >= min_wall:
                return n, wall, time.process_time() - c0
    time_for(args.warmup_s)
    runs = [time_for(args.repeat_s) for _ in range(args.repeats)]
    cpu = [units * n / c for n, _, c in runs]
    wall = [units * n / w for n, w, _ in runs]
    return {"per_cpu_s_best": max(cpu), "per_cpu_s_median": float(np.median(cpu)),
            "per_wall_s_best": max(wall), "per_wall_s_median": float(np.median(wall)),
            "runs": [list(r) for r in runs]}


def check_one_thread(label, rates, warnings):
    """A run whose CPU seconds exceed its wall seconds used more than one
    thread; other jobs only push CPU below wall."""
    worst = max(c / w for _, w, c in rates["runs"])
    rates["cpu_over_wall_max"] = worst
    if worst > 1.1:
        warnings.append(f"{label}: CPU {worst:.2f}x wall: more than one thread ran")
    return rates


def timing_flags(args):
    return ["--repeats", str(args.repeats), "--repeat-s", str(args.repeat_s), "--warmup-s", str(args.warmup_s)]


def run_json(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.strip()}")
    return json.loads(p.stdout)


def run_ok(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr.strip()}")
    return p.stdout


# --------------------------------------------------------------- ONNX Runtime

def ensure_ort():
    pkg = os.path.join(ORT_PREFIX, "node_modules", "onnxruntime-node", "package.json")
    if os.path.exists(pkg) and json.load(open(pkg))["version"] == ORT_NODE_VERSION:
        return
    os.makedirs(ORT_PREFIX, exist_ok=True)
    env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")
    run_ok(["npm", "install", "--prefix", ORT_PREFIX, "--save-exact", "--no-audit", "--no-fund",
            "--loglevel=error", f"onnxruntime-node@{ORT_NODE_VERSION}"], env=env)


def export_onnx(model, example, path):
    with torch.no_grad():
        torch.onnx.export(model, example, path, input_names=["x"], output_names=["y"],
                          opset_version=13, do_constant_folding=True)


# ----------------------------------------------------------------- networks

def compare_network(model_dir, args, tmp, versions):
    spec = json.load(open(os.path.join(model_dir, "spec.json")))
    tensors = read_safetensors(os.path.join(model_dir, "weights.safetensors"))
    net, shape, torch_in, out_size = build_torch(spec, tensors)
    name = spec["name"]
    per_window = int(np.prod(shape))
    batches = args.batches
    n_check = max(args.check_windows, max(batches))
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((n_check, per_window), dtype=np.float32)
    x_path = os.path.join(tmp, f"{name}_x.f32")
    x.tofile(x_path)

    # PyTorch eager: the reference outputs.
    with torch.inference_mode():
        ref = net(torch.from_numpy(x).reshape([n_check] + torch_in)).numpy()
    if ref.shape != (n_check, out_size):
        raise Mismatch(f"{name}: torch gives {ref.shape}, expected {(n_check, out_size)}")

    # Ours.
    ours_path = os.path.join(tmp, f"{name}_ours.f32")
    run_ok([args.bench_models, model_dir, "--dump-logits", x_path, ours_path, "--batch", "8"])
    ours = np.fromfile(ours_path, dtype=np.float32)
    d_ours, scale = check_close(f"{name}: ours vs PyTorch", ours, ref, args.tol)
    argmax_same = bool(np.all(ours.reshape(ref.shape).argmax(1) == ref.argmax(1)))

    # PyTorch frozen TorchScript.
    with torch.no_grad():
        example = torch.from_numpy(x[:1]).reshape([1] + torch_in)
        jit = torch.jit.optimize_for_inference(torch.jit.trace(net, example))
        jit_out = jit(torch.from_numpy(x).reshape([n_check] + torch_in)).numpy()
    d_jit, _ = check_close(f"{name}: torch-jit vs PyTorch", jit_out, ref, args.tol)

    checks = {"windows": n_check, "tol": args.tol, "scale": scale, "ours_max_abs_diff": d_ours,
              "ours_argmax_same": argmax_same, "jit_max_abs_diff": d_jit, "ort_max_abs_diff": {}}
    print(f"{name}: outputs agree on {n_check} random windows: ours vs PyTorch max |diff| {d_ours:.2e}, "
          f"torch-jit {d_jit:.2e} (tol {args.tol:g} x {scale:.3g}); argmax same: {argmax_same}",
          file=sys.stderr)

    # Ours, timed.
    ours_t = run_json([args.bench_models, model_dir, "--batches", ",".join(map(str, batches))]
                      + timing_flags(args))
    if ours_t["input_shape"] != shape:
        raise Mismatch(f"{name}: bench_models says input {ours_t['input_shape']}, this script {shape}")
    versions["openblas"] = ours_t["openblas_config"]
    if ours_t["openblas_threads"] != 1:
        raise RuntimeError(f"OpenBLAS ran {ours_t['openblas_threads']} threads, not 1")

    rows = []
    for b, ours_r in zip(batches, ours_t["results"]):
        xb = torch.from_numpy(x[:b]).reshape([b] + torch_in)
        with torch.inference_mode():
            eager = measure(lambda: net(xb), b, args)
        with torch.no_grad():
            jit_b = torch.jit.optimize_for_inference(torch.jit.trace(net, xb))
            jit_t = measure(lambda: jit_b(xb), b, args)
        ort_t = None
        if not args.skip_ort:
            onnx_path = os.path.join(tmp, f"{name}_b{b}.onnx")
            export_onnx(net, xb, onnx_path)
            expect_path = os.path.join(tmp, f"{name}_ref_b{b}.f32")
            ref[:b].astype(np.float32).tofile(expect_path)
            ort_t = run_json([args.node, os.path.join(REPO, "bench", "ort_bench.js"), "--model", onnx_path,
                              "--shape", ",".join(map(str, [b] + torch_in)), "--input", x_path,
                              "--expect", expect_path, "--tol", str(args.tol)] + timing_flags(args),
                             env=dict(os.environ, NODE_PATH=os.path.join(ORT_PREFIX, "node_modules")))
            checks["ort_max_abs_diff"][b] = ort_t["max_abs_diff"]
            versions["onnxruntime-node"] = ort_t["onnxruntime_node"]
        row = {"model": name, "batch": b, "ours": ours_r["windows"], "torch": eager,
               "torch_jit": jit_t, "ort": ort_t["windows"] if ort_t else None}
        for k in ("ours", "torch", "torch_jit", "ort"):
            if row[k] is not None:
                check_one_thread(f"{name} batch {b} {k}", row[k], args.warnings)
        rows.append(row)
    return {"model": name, "dir": model_dir, "input_shape": shape, "checks": checks, "rows": rows}


# ---------------------------------------------------------------- front end

def slaney_mel_matrix(rate, n_fft, bands, f_min, f_max):
    """[bands, n_fft/2 + 1]: Slaney mel (linear to 1 kHz, log above), area-
    normalised triangles (2 / width), as dsp/mel.cc and librosa's default."""
    step = math.log(6.4) / 27.0

    def hz_to_mel(hz):
        return 3.0 * hz / 200.0 if hz < 1000.0 else 15.0 + math.log(hz / 1000.0) / step

    def mel_to_hz(m):
        return 200.0 * m / 3.0 if m < 15.0 else 1000.0 * math.exp(step * (m - 15.0))

    lo, hi = hz_to_mel(f_min), hz_to_mel(f_max)
    edges = np.array([mel_to_hz(lo + (hi - lo) * i / (bands + 1)) for i in range(bands + 2)])
    hz = np.arange(n_fft // 2 + 1) * rate / n_fft
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((hz - left) / (centre - left), (right - hz) / (right - centre)))
    return (tri * (2.0 / (right - left))).astype(np.float32)


class NumpyFrontEnd:
    """The whole signal at once: frames -> Hann -> rfft -> power -> mel -> log
    -> windows of frames (band-major) -> per-window normalisation."""

    def __init__(self, spec):
        fe = field(spec, "front_end")
        stft, mel, win = field(fe, "stft"), field(fe, "mel"), field(spec, "windowing")
        supported = (field(stft, "window") in ("HANN", 1)
                     and field(stft, "spectrum") not in ("MAGNITUDE", 2)
                     and field(mel, "scale") not in ("HTK", 2)
                     and field(fe, "normalization") in (0, "NORMALIZATION_NONE", 2, "PER_WINDOW"))
        if not supported:
            raise NotImplementedError("the numpy reference does Hann, power, Slaney mel, "
                                      "per-window or no normalisation")
        self.rate = field(spec, "sample_rate_hz")
        self.length, self.hop = field(stft, "frame_length"), field(stft, "frame_hop")
        self.n_fft = field(stft, "fft_size")
        self.floor = field(field(fe, "log", {}), "floor") or 1e-10
        self.normalise = field(fe, "normalization") in ("PER_WINDOW", 2)
        self.window_length, self.window_hop = field(win, "length_samples"), field(win, "hop_samples")
        n = np.arange(self.length)
        self.hann = (0.5 - 0.5 * np.cos(2 * np.pi * n / self.length)).astype(np.float32)  # periodic
        self.mel = slaney_mel_matrix(self.rate, self.n_fft, field(mel, "num_bands"),
                                     field(mel, "f_min_hz"), field(mel, "f_max_hz"))
        self.frames_per_window = (self.window_length - self.length) // self.hop + 1
        self.frames_per_hop = self.window_hop // self.hop

    def __call__(self, x):
        windows = (len(x) - self.window_length) // self.window_hop + 1
        n_frames = (windows - 1) * self.frames_per_hop + self.frames_per_window
        frames = np.lib.stride_tricks.sliding_window_view(x, self.length)[::self.hop][:n_frames]
        spec = scipy.fft.rfft(frames * self.hann, n=self.n_fft, axis=1, workers=1)
        power = spec.real * spec.real + spec.imag * spec.imag
        logmel = np.log(np.maximum(power @ self.mel.T, np.float32(self.floor)))  # [frames, bands]
        idx = (np.arange(windows)[:, None] * self.frames_per_hop + np.arange(self.frames_per_window)[None, :])
        w = logmel[idx].transpose(0, 2, 1)  # [windows, bands, frames]
        if self.normalise:
            w64 = w.astype(np.float64)
            mean = w64.mean(axis=(1, 2), keepdims=True)
            std = w64.std(axis=(1, 2), keepdims=True)
            w = ((w64 - mean) / (std + 1e-5)).astype(np.float32)
        return w


def compare_front_end(model_dir, args, tmp):
    spec = json.load(open(os.path.join(model_dir, "spec.json")))
    ref = NumpyFrontEnd(spec)
    rate = ref.rate
    rng = np.random.default_rng(args.seed)
    # Check signal: noise, a 440 Hz tone over -60 dB noise, silence (the log
    # floor) and a quiet stretch. A bare tone would leave bands far from it at
    # float32 rounding level, where two correct FFTs differ in the log.
    n = int(rate)
    t = np.arange(n) / rate
    check = np.concatenate([rng.uniform(-1, 1, 2 * n),
                            0.5 * np.sin(2 * np.pi * 440 * t) + 1e-3 * rng.standard_normal(n),
                            np.zeros(n), 1e-4 * rng.standard_normal(n)]).astype(np.float32)
    a_path, f_path = os.path.join(tmp, "fe_audio.f32"), os.path.join(tmp, "fe_ours.f32")
    check.tofile(a_path)
    run_ok([args.bench_models, model_dir, "--dump-features", a_path, f_path])
    ours = np.fromfile(f_path, dtype=np.float32)
    want = ref(check)
    d, scale = check_close(f"{spec['name']} front end: ours vs numpy", ours, want, args.fe_tol)
    print(f"{spec['name']} front end: features agree on {want.shape[0]} windows, max |diff| {d:.2e} "
          f"(tol {args.fe_tol:g} x {scale:.3g})", file=sys.stderr)

    ours_t = run_json([args.bench_models, model_dir, "--frontend", "--audio-s", str(args.audio_s)]
                      + timing_flags(args))
    audio = rng.uniform(-1, 1, int(args.audio_s * rate)).astype(np.float32)
    sink = []
    ref_t = measure(lambda: sink.append(ref(audio)[0, 0, 0]), args.audio_s, args)
    check_one_thread(f"{spec['name']} front end ours", ours_t["audio_s"], args.warnings)
    check_one_thread(f"{spec['name']} front end numpy", ref_t, args.warnings)
    return {"model": spec["name"], "windows_checked": int(want.shape[0]), "max_abs_diff": d,
            "tol": args.fe_tol, "ours": ours_t["audio_s"], "numpy": ref_t,
            "chunk_samples": ours_t["chunk_samples"]}


# ------------------------------------------------------------------- report

def fmt(v):
    return "-" if v is None else f"{v:,.0f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def debian_version(package):
    p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else None


def print_report(nets, fes, versions, warnings):
    best = lambda r: None if r is None else r["per_cpu_s_best"]  # noqa: E731
    print("\nNetwork, windows per CPU-second, one thread (best of runs):\n")
    print("| model | batch | ours | PyTorch eager | PyTorch JIT | ORT | ours/eager | ours/JIT | ours/ORT |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for net in nets:
        for r in net["rows"]:
            o, e, j, t = best(r["ours"]), best(r["torch"]), best(r["torch_jit"]), best(r["ort"])
            print(f"| {r['model']} | {r['batch']} | {fmt(o)} | {fmt(e)} | {fmt(j)} | {fmt(t)} | "
                  f"{ratio(o, e)} | {ratio(o, j)} | {ratio(o, t)} |")
    if fes:
        print("\nFront end, seconds of audio per CPU-second, one thread (best of runs):\n")
        print("| model | ours (streaming, chunks) | numpy/scipy (whole signal) | ours/numpy "
              "| ours: % of a core per real-time stream |")
        print("|---|---:|---:|---:|---:|")
        for f in fes:
            o, n = best(f["ours"]), best(f["numpy"])
            print(f"| {f['model']} | {fmt(o)} ({f['chunk_samples']}-sample chunks) | {fmt(n)} | {ratio(o, n)} | "
                  f"{100.0 / o:.4f}% |")
    print("\nVersions: " + "; ".join(f"{k} {v}" for k, v in versions.items()))
    for w in warnings:
        print(f"WARNING: {w}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=["models/digits/1", "models/ecg-beats/2"])
    ap.add_argument("--build-dir", default="build", help="where bench/bench_models was built")
    ap.add_argument("--batches", default="1,8,64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--repeat-s", type=float, default=0.3, help="min wall seconds per timed run")
    ap.add_argument("--warmup-s", type=float, default=0.3)
    ap.add_argument("--tol", type=float, default=1e-4, help="network outputs: |diff| <= tol * max(1, max|ref|)")
    ap.add_argument("--fe-tol", type=float, default=1e-4, help="front-end features, the same rule")
    ap.add_argument("--check-windows", type=int, default=64)
    ap.add_argument("--audio-s", type=float, default=10.0, help="seconds of audio per front-end iteration")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--node", default="node")
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument("--json", help="write every figure, run and check here")
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    args.warnings = []
    args.bench_models = os.path.join(args.build_dir, "bench", "bench_models")
    if not os.access(args.bench_models, os.X_OK):
        sys.exit(f"compare_peers: {args.bench_models} not found; build it: "
                 f"cmake --build {args.build_dir} --target bench_models")
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    versions = {"torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                "python": platform.python_version(),
                "Debian python3-torch": debian_version("python3-torch"),
                "Debian libopenblas0-pthread": debian_version("libopenblas0-pthread"),
                "Debian libdnnl2 (ours)": debian_version("libdnnl2"),
                "torch mkldnn (oneDNN)": torch.backends.mkldnn.is_available(),
                "cpu": next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                             if ln.startswith("model name")), platform.processor())}
    if not args.skip_ort:
        import onnx  # python3-onnx: only the exporter's dependency, noted for the record
        versions["onnx (python)"] = onnx.__version__
        versions["node"] = run_ok([args.node, "--version"]).strip()
        ensure_ort()

    nets, fes = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="wavepool-peers-") as tmp:
            for d in args.models:
                nets.append(compare_network(d, args, tmp, versions))
                spec = json.load(open(os.path.join(d, "spec.json")))
                if field(spec, "kind") in ("FIXED_WINDOWS", 1):
                    fes.append(compare_front_end(d, args, tmp))
    except (Mismatch, RuntimeError, ValueError, NotImplementedError) as e:
        sys.exit(f"compare_peers: FAILED: {e}")
    print_report(nets, fes, versions, args.warnings)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": versions, "warnings": args.warnings,
                       "args": {k: v for k, v in vars(args).items() if k != "warnings"},
                       "networks": nets, "front_ends": fes}, f, indent=1)


if __name__ == "__main__":
    main()
