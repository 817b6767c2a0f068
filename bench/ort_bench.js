// ONNX Runtime (the onnxruntime-node package) on one exported network, one
// thread, for bench/compare_peers.py, which writes the inputs and PyTorch's
// outputs for them and installs the package (under .tools/peers/).
//
//   NODE_PATH=.tools/peers/node_modules node bench/ort_bench.js \
//     --model net_b8.onnx --shape 8,1,40,98 --input x.f32 --expect y.f32 [--tol 1e-4]
//     [--repeats 5 --repeat-s 0.3 --warmup-s 0.3]
//
// --input holds at least product(shape) float32 values (the first ones are
// used); --expect holds PyTorch's outputs for them. ORT's outputs must agree
// within tol * max(1, max |expected|) or the script exits 1 before timing.
// Timing mirrors bench_models.cc: a warm-up, then --repeats runs of at least
// --repeat-s wall seconds, each rated per CPU second of this process (all
// threads) and per wall second. Prints one JSON object.
'use strict';

const fs = require('fs');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = { tol: 1e-4, repeats: 5, repeatS: 0.3, warmupS: 0.3 };
  const names = {
    '--model': 'model', '--shape': 'shape', '--input': 'input', '--expect': 'expect',
    '--tol': 'tol', '--repeats': 'repeats', '--repeat-s': 'repeatS', '--warmup-s': 'warmupS',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (key === undefined || i + 1 >= argv.length) {
      throw new Error(`unknown flag or missing value: ${argv[i]} (flags: ${Object.keys(names).join(' ')})`);
    }
    a[key] = argv[i + 1];
  }
  for (const k of ['model', 'shape', 'input', 'expect']) {
    if (a[k] === undefined) throw new Error(`--${k} is required`);
  }
  a.shape = a.shape.split(',').map(Number);
  if (a.shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new Error(`--shape must be positive integers separated by commas, got ${a.shape}`);
  }
  for (const k of ['tol', 'repeats', 'repeatS', 'warmupS']) {
    a[k] = Number(a[k]);
    if (!(a[k] > 0)) throw new Error(`${k} must be a number > 0`);
  }
  return a;
}

function readFloats(path) {
  const bytes = fs.readFileSync(path);
  if (bytes.length % 4 !== 0) throw new Error(`${path}: ${bytes.length} bytes is not whole float32 values`);
  // Copied into a fresh (aligned) buffer.
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function timeFor(minWallS, once) {
  const wall0 = performance.now();
  const cpu0 = cpuSeconds();
  let iterations = 0;
  let wallS = 0;
  do {
    await once();
    ++iterations;
    wallS = (performance.now() - wall0) / 1e3;
  } while (wallS < minWallS);
  return { iterations, wallS, cpuS: cpuSeconds() - cpu0 };
}

function median(v) {
  const s = [...v].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const batch = a.shape[0];
  const count = a.shape.reduce((x, y) => x * y, 1);
  const all = readFloats(a.input);
  if (all.length < count) throw new Error(`${a.input} holds ${all.length} floats; shape ${a.shape} needs ${count}`);
  const input = all.slice(0, count);
  const expect = readFloats(a.expect);

  const session = await ort.InferenceSession.create(a.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, a.shape) };
  const first = await session.run(feeds);
  const got = first[session.outputNames[0]].data;
  if (got.length !== expect.length) {
    throw new Error(`ORT gave ${got.length} outputs, ${a.expect} holds ${expect.length}`);
  }
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < got.length; ++i) {
    if (!Number.isFinite(got[i])) throw new Error(`ORT output ${i} is ${got[i]}`);
    maxDiff = Math.max(maxDiff, Math.abs(got[i] - expect[i]));
    maxRef = Math.max(maxRef, Math.abs(expect[i]));
  }
  const bound = a.tol * Math.max(1, maxRef);
  if (!(maxDiff <= bound)) {
    throw new Error(`ORT disagrees with PyTorch on ${a.model}: max |diff| ${maxDiff} > ${bound} ` +
                    `(tol ${a.tol} x max(1, max |PyTorch| ${maxRef}))`);
  }

  const once = () => session.run(feeds);
  await timeFor(a.warmupS, once);
  const runs = [];
  for (let i = 0; i < a.repeats; ++i) runs.push(await timeFor(a.repeatS, once));
  const cpu = runs.map((r) => (batch * r.iterations) / r.cpuS);
  const wall = runs.map((r) => (batch * r.iterations) / r.wallS);
  console.log(JSON.stringify({
    onnxruntime_node: ort.env.versions.node,
    onnxruntime_common: ort.env.versions.common,
    node: process.version,
    batch,
    max_abs_diff: maxDiff,
    max_abs_ref: maxRef,
    windows: {
      per_cpu_s_best: Math.max(...cpu),
      per_cpu_s_median: median(cpu),
      per_wall_s_best: Math.max(...wall),
      per_wall_s_median: median(wall),
      runs: runs.map((r) => [r.iterations, r.wallS, r.cpuS]),
    },
  }));
}

main().catch((e) => {
  console.error(`ort_bench: ${e.message}`);
  process.exit(1);
});
