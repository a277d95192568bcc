// ort_runner.js: ONNX Runtime (CPU) as a long-lived peer process for bench.py.
//
//   node bench/ort_runner.js
//
// bench.py starts one runner per case and talks to it in JSON lines: one command per line on
// stdin, one answer per line on stdout (ONNX Runtime's own messages go to stderr).  Keeping
// the session alive between timing rounds is what lets the rounds interleave with kiln and
// PyTorch without reloading the model each time, as an application would hold a session.
//
//   {"cmd": "load", "model": PATH, "threads": T,
//    "inputs": {NAME: {"file": PATH, "dtype": "int64", "shape": [B, S]}, ...}}
//       -> {"ok": true, "version": "1.30.0", "load_ms": ...}
//     Session options: intraOpNumThreads T, interOpNumThreads 1, graphOptimizationLevel
//     'all', CPU execution provider, sequential execution.  Input files hold raw
//     little-endian data of dtype (int64 or float32).
//   {"cmd": "save", "dir": DIR}
//       -> {"ok": true, "outputs": {NAME: {"file": DIR/ort.NAME.f32, "shape": [...]}}}
//     Runs once and writes every output as raw little-endian float32.
//   {"cmd": "run", "n": N}
//       -> {"ok": true, "times_ms": [N numbers], "cpu_ms": ..., "wall_ms": ...}
//     Runs N times back to back; times each run alone (process.hrtime, ms).  cpu_ms is this
//     process's user + system CPU time over the N runs, so cpu_ms / wall_ms is the number of
//     cores kept busy.
//   {"cmd": "quit"}
//
// Any failure answers {"ok": false, "error": MESSAGE}; bench.py reports it and goes on.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

let session = null;   // the InferenceSession after "load"
let feeds = null;     // input name -> ort.Tensor

function readTensor(spec) {
  const buf = fs.readFileSync(spec.file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  let data;
  if (spec.dtype === 'int64') data = new BigInt64Array(ab);
  else if (spec.dtype === 'float32') data = new Float32Array(ab);
  else throw new Error(`${spec.file}: dtype ${spec.dtype} not supported`);
  const count = spec.shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new Error(`${spec.file}: ${data.length} elements, shape ${spec.shape} wants ${count}`);
  }
  return new ort.Tensor(spec.dtype, data, spec.shape);
}

async function load(msg) {
  const t0 = process.hrtime.bigint();
  session = await ort.InferenceSession.create(msg.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: msg.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  feeds = {};
  for (const [name, spec] of Object.entries(msg.inputs)) feeds[name] = readTensor(spec);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const version = require(path.join(__dirname, 'node_modules', 'onnxruntime-node',
                                    'package.json')).version;
  return { ok: true, version, load_ms: ms, inputs: session.inputNames,
           outputs: session.outputNames };
}

async function save(msg) {
  const out = await session.run(feeds);
  const res = {};
  for (const name of session.outputNames) {
    const t = out[name];
    if (t.type !== 'float32') throw new Error(`output ${name} is ${t.type}, not float32`);
    const file = path.join(msg.dir, `ort.${name}.f32`);
    fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    res[name] = { file, shape: t.dims };
  }
  return { ok: true, outputs: res };
}

async function run(msg) {
  const times = [];
  const cpu0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < msg.n; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const wall = Number(process.hrtime.bigint() - w0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { ok: true, times_ms: times, cpu_ms: (cpu.user + cpu.system) / 1e3, wall_ms: wall };
}

const handlers = { load, save, run };

const rl = readline.createInterface({ input: process.stdin, terminal: false });
// Commands are answered one at a time, in order: the next line waits for the previous run.
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    let msg;
    try {
      msg = JSON.parse(line);
      if (msg.cmd === 'quit') process.exit(0);
      if (!handlers[msg.cmd]) throw new Error(`unknown command ${msg.cmd}`);
      if (msg.cmd !== 'load' && !session) throw new Error('no model loaded');
      process.stdout.write(JSON.stringify(await handlers[msg.cmd](msg)) + '\n');
    } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) }) + '\n');
    }
  });
});
rl.on('close', () => { queue.then(() => process.exit(0)); });
