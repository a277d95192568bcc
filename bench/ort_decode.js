// ort_decode.js: ONNX Runtime's side of the decode benchmark (bench/decode.py): greedy
// decoding with GPT-2 exported as a decoder with its key/value cache as inputs and outputs.
//
//   node bench/ort_decode.js
//
// The model (decode.py writes it) takes input_ids [1, S] int64 and past_k, past_v
// [L, 1, H, P, D] float32 (every layer's cached keys and values, stacked) and returns
// logits [1, S, V] and present_k, present_v [L, 1, H, P + S, D]; S and P are dynamic.  A
// round feeds the presents back as the next call's pasts, as an application decoding with
// ONNX Runtime does.  JSON lines, one command per line on stdin, one answer per line on
// stdout, like ort_runner.js:
//
//   {"cmd": "load", "model": PATH, "threads": T, "prompt": PATH (raw int64 [1, P]),
//    "layers": L, "heads": H, "head_dim": D, "steps": N}
//       -> {"ok": true, "version": "1.30.0", "load_ms": ...}
//     Session options as ort_runner.js: intraOpNumThreads T, interOpNumThreads 1,
//     graphOptimizationLevel 'all', CPU execution provider, sequential execution.
//   {"cmd": "round"}
//       -> {"ok": true, "prefill_ms": X, "step_ms": [N], "ids": [N + 1], "cpu_ms", "wall_ms"}
//     The prompt with empty pasts (P = 0), then N calls of one token each, the argmax of the
//     previous call's last row of logits.  A step's time is its session.run (outputs copied
//     into JavaScript arrays, as onnxruntime-node returns them) and the argmax.
//   {"cmd": "dump", "dir": DIR}
//     A round that also writes DIR/ort.prefill.f32 [1, P, V], DIR/ort.step1.f32 and
//     DIR/ort.last.f32 [1, 1, V] (raw little-endian float32).
//   {"cmd": "quit"}
//
// Any failure answers {"ok": false, "error": MESSAGE}.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));

let session = null;   // the InferenceSession after "load"
let cfg = null;       // the load command: layers, heads, head_dim, steps
let prompt = null;    // ort.Tensor int64 [1, P]

async function load(msg) {
  const t0 = process.hrtime.bigint();
  session = await ort.InferenceSession.create(msg.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: msg.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const buf = fs.readFileSync(msg.prompt);
  const ids = new BigInt64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  prompt = new ort.Tensor('int64', ids, [1, ids.length]);
  cfg = msg;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const version = require(path.join(__dirname, 'node_modules', 'onnxruntime-node',
                                    'package.json')).version;
  return { ok: true, version, load_ms: ms, inputs: session.inputNames,
           outputs: session.outputNames };
}

// Index of the largest of x[from .. from + n): the greedy choice (the first one on a tie).
function argmax(x, from, n) {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (x[i] > x[best]) best = i;
  return best - from;
}

function write(dir, name, t) {
  const d = t.data;
  fs.writeFileSync(path.join(dir, `ort.${name}.f32`),
                   Buffer.from(d.buffer, d.byteOffset, d.byteLength));
}

async function round(msg) {
  const { layers: L, heads: H, head_dim: D, steps: N } = cfg;
  const dir = msg.dir;
  const empty = new ort.Tensor('float32', new Float32Array(0), [L, 1, H, 0, D]);
  const stepMs = [];
  const ids = [];
  const cpu0 = process.cpuUsage();
  const w0 = process.hrtime.bigint();

  let t0 = process.hrtime.bigint();
  let out = await session.run({ input_ids: prompt, past_k: empty, past_v: empty });
  const V = out.logits.dims[2];
  const P = out.logits.dims[1];
  ids.push(argmax(out.logits.data, (P - 1) * V, V));
  const prefillMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (dir) write(dir, 'prefill', out.logits);

  for (let k = 1; k <= N; k++) {
    // The hot loop: one token in with the cache so far, logits and the grown cache out.
    t0 = process.hrtime.bigint();
    const tok = new ort.Tensor('int64', BigInt64Array.of(BigInt(ids[k - 1])), [1, 1]);
    out = await session.run({ input_ids: tok, past_k: out.present_k, past_v: out.present_v });
    ids.push(argmax(out.logits.data, 0, V));
    stepMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (dir && k === 1) write(dir, 'step1', out.logits);
    if (dir && k === N) write(dir, 'last', out.logits);
  }
  const wall = Number(process.hrtime.bigint() - w0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { ok: true, prefill_ms: prefillMs, step_ms: stepMs, ids,
           cpu_ms: (cpu.user + cpu.system) / 1e3, wall_ms: wall };
}

const handlers = { load, round, dump: round };

const rl = readline.createInterface({ input: process.stdin, terminal: false });
// Commands are answered one at a time, in order: the next line waits for the previous one.
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
      const error = String(e && e.message || e);
      process.stdout.write(JSON.stringify({ ok: false, error }) + '\n');
    }
  });
});
rl.on('close', () => { queue.then(() => process.exit(0)); });
