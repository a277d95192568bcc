#!/usr/bin/python3
"""bench.py: kiln's benchmark: time compiled models against PyTorch and ONNX Runtime.

    bash bench/run.sh            (the entry point: sets the environment, builds the probes,
                                  installs ONNX Runtime, then runs this file)

This is a benchmark, not a test: it measures and reports, and exits 0 unless the harness
itself breaks.  For each case in cases.CASES, in order:

  1. prepare   the reference module with random weights (fixed seed) writes weights,
               inputs and an ONNX export into bench/work/<case>/ (cases.py);
  2. build     `kiln build SPEC -D ... -o bench/work/<case>/kiln_model`, timed;
  3. check     kiln's outputs against PyTorch's (float32, the timed module) and ONNX
               Runtime's, and all three against float64 truth; kiln passes when
               max|kiln - ref| <= TOL x max|ref| for both peers on every output.  A case that
               fails is reported FAILED: its timings are shown, never counted as a win;
  4. time      after warm-up, ROUNDS rounds of kiln, PyTorch, ONNX Runtime in turn, so
               that drift in the machine (clock, neighbours) falls on all three alike; each
               round runs each system R times (R from the time budget, at least 1), and
               each system gets ROUNDS x R >= 5 timed runs;
  5. report    median and best per system, ratios, GFLOP/s and share of peak (report.py).

After them it runs the decode case, gpt2-decode (decode.py: a prompt, then greedy decoding
one token per call; ms per token against the weights' bandwidth floor).

Before the cases it measures the machine (peak.c: FP32 FMA peak; stream.c: read bandwidth)
and how long `kiln build models/bert.yaml` (bert-base, the spec's defaults) takes.

Settings (environment):
  BENCH_THREADS  threads for every system (2)         BENCH_QUICK   1: small models (0)
  BENCH_ROUNDS   timing rounds (5)                    BENCH_SECONDS timed seconds per system
  BENCH_CASES    comma-separated case ids (all)                     per case (30; quick 3)
  KILN           the kiln driver (build/kiln)         BENCH_RESULTS output folder
                                                                    (bench/results)
  BENCH_DECODE_STEPS  greedy steps per round of the decode case (32)
  BENCH_ISA      kiln's --isa for every kiln build (auto: the host's); run.sh builds the peak
                 probe for the same ISA, so "share of peak" is that ISA's peak
"""

import ctypes
import datetime
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


THREADS = env_int("BENCH_THREADS", 2)
QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
ROUNDS = max(1, env_int("BENCH_ROUNDS", 5))
MIN_RUNS = 5                       # timed runs per system per case, at least
SECONDS = float(os.environ.get("BENCH_SECONDS", "") or (3 if QUICK else 30))
WARMUP_S = 0.5 if QUICK else 2.0   # warm-up per system: at least 2 runs and this long
TOL = 1e-4                         # allowed max abs error, as a fraction of max |reference|
GAP_S = 0.2                        # pause between systems: lets idle threads park
KILN = os.path.abspath(os.environ.get("KILN", os.path.join(ROOT, "build", "kiln")))
WORK = os.path.join(HERE, "work")
RESULTS = os.path.abspath(os.environ.get("BENCH_RESULTS", os.path.join(HERE, "results")))
ISA = os.environ.get("BENCH_ISA", "").strip() or "auto"
if ISA not in ("auto", "avx512", "avx2", "neon", "scalar"):
    sys.exit(f"bench: BENCH_ISA wants auto, avx512, avx2, neon or scalar, found '{ISA}'")

# Threads are fixed before torch starts: OpenMP (PyTorch's own kernels) waits passively so
# idle threads do not steal the other systems' cores; OpenBLAS (PyTorch's matmuls) gets the
# same count; OPENBLAS_CORETYPE/L2_SIZE (pinned elsewhere for reproducible tests) are dropped
# so OpenBLAS picks its kernels for this CPU, as a user's install would.
os.environ["OMP_WAIT_POLICY"] = "passive"
os.environ["OMP_NUM_THREADS"] = str(THREADS)
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)
os.environ.pop("OPENBLAS_CORETYPE", None)
os.environ.pop("OPENBLAS_L2_SIZE", None)

sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402

import cases  # noqa: E402  (imports tests/reference/common.py, which sets 1 thread)
import decode  # noqa: E402  (the decode case, gpt2-decode: ms per generated token)
import report  # noqa: E402

torch.set_num_threads(THREADS)
torch.set_num_interop_threads(1)


def say(msg=""):
    print(msg, flush=True)


def run_cmd(argv, **kw):
    """subprocess.run with text output captured; never raises on a non-zero exit."""
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------------------------------
# The machine and the software

def amd_uarch(family, model):
    """Zen generation from /proc/cpuinfo's cpu family and model (AMD only), or ''."""
    if family == 26:
        return "Zen 5"
    if family == 25:
        if model < 0x10 or 0x20 <= model < 0x30 or 0x40 <= model < 0x60:
            return "Zen 3"
        return "Zen 4"
    if family == 23:
        return "Zen 2" if model >= 0x30 else "Zen / Zen+"
    return ""


def machine_info():
    """CPU model, microarchitecture, ISA, cores and memory, from /proc."""
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k in ("model name", "vendor_id", "cpu family", "model", "flags") and k not in info:
                info[k] = v
    flags = set(info.get("flags", "").split())
    family, model = int(info.get("cpu family", "0")), int(info.get("model", "0"))
    uarch = amd_uarch(family, model) if info.get("vendor_id") == "AuthenticAMD" else ""
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpu": info.get("model name", "?"), "vendor": info.get("vendor_id", "?"),
            "family": family, "model": model, "uarch": uarch, "isa": isa,
            "cpus": os.cpu_count(), "mem_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release()}


def probe(name, *args):
    """Run bench/work/<name> (peak or stream, built by run.sh); return its JSON line."""
    exe = os.path.join(WORK, name)
    r = run_cmd([exe, *map(str, args)])
    if r.returncode != 0:
        raise RuntimeError(f"{exe} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def torch_blas():
    """Which BLAS library this process's PyTorch loaded, and OpenBLAS's kernel choice."""
    torch.ones(8, 8) @ torch.ones(8, 8)     # makes sure the BLAS is loaded
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in os.path.basename(p):
                libs.add(p)
    core = ""
    try:
        for p in sorted(libs):
            lib = ctypes.CDLL(p)
            if hasattr(lib, "openblas_get_corename"):
                lib.openblas_get_corename.restype = ctypes.c_char_p
                core = lib.openblas_get_corename().decode()
                break
    except OSError:
        pass
    return {"libs": sorted(libs), "openblas_core": core}


def software_info():
    """Versions of everything measured or used to measure, and the kiln commit."""
    def first_line(argv):
        try:
            r = run_cmd(argv)
            return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else ""
        except OSError:
            return ""
    commit = first_line(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"])
    dirty = bool(run_cmd(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
                 .stdout.strip()) if commit else False
    return {"kiln": os.path.relpath(KILN, ROOT), "kiln_commit": commit + ("+dirty" if dirty else ""),
            "clang": first_line(["clang", "--version"]), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "torch_blas": torch_blas(),
            "node": first_line(["node", "--version"])}


def cpu_busy_s():
    """Seconds of CPU time the whole machine has spent busy since boot (/proc/stat: user,
    nice, system, irq, softirq), and the seconds stolen by the hypervisor (steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / hz, (v[7] if len(v) > 7 else 0) / hz


def own_cpu_s(extra_pids=()):
    """CPU seconds used by this process, its finished children and the live `extra_pids`."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
    hz = os.sysconf("SC_CLK_TCK")
    for pid in extra_pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += (int(fields[11]) + int(fields[12])) / hz      # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return t


class LoadMeter:
    """How busy the machine was with other work while we measured.

    The benchmark shares the machine: any other process (a build, a test suite) takes cores
    from whichever system is running, and the interleaved rounds spread that over all three
    but cannot remove it.  This meter reads the machine's busy CPU time and subtracts ours;
    what is left, per second of wall time, is the number of cores others used.  Over ~0.25
    of a core the timings are noisy; report.py says so beside the case.
    """

    def __init__(self, pids=()):
        self.pids = pids
        self.t0 = time.perf_counter()
        self.busy0, self.steal0 = cpu_busy_s()
        self.own0 = own_cpu_s(pids)

    def read(self):
        wall = time.perf_counter() - self.t0
        busy, steal = cpu_busy_s()
        others = (busy - self.busy0) - (own_cpu_s(self.pids) - self.own0)
        return {"other_cores": max(others, 0.0) / wall if wall > 0 else 0.0,
                "steal_cores": (steal - self.steal0) / wall if wall > 0 else 0.0,
                "seconds": wall}


# ---------------------------------------------------------------------------------------
# kiln

KILN_TIMES = re.compile(r"forward: (\d+) runs, min ([0-9.]+) ms, median ([0-9.]+) ms")


def kiln_build(spec, params, out):
    """`kiln build spec -D k=v ... -o out`; returns (ok, seconds, message)."""
    argv = [KILN, "build", spec, "--isa", ISA]
    for k, v in (params or {}).items():
        argv += ["-D", f"{k}={v}"]
    argv += ["-o", out]
    t0 = time.perf_counter()
    try:
        r = run_cmd(argv, cwd=ROOT)
    except OSError as e:
        return False, 0.0, str(e)
    dt = time.perf_counter() - t0
    msg = (r.stderr + r.stdout).strip()
    return r.returncode == 0 and os.path.exists(out), dt, msg


class Kiln:
    """A built kiln model binary and the files it runs on."""

    def __init__(self, exe, work, inputs):
        self.exe = exe
        self.args = ["--weights", os.path.join(work, "weights.safetensors")]
        for k in inputs:
            self.args += ["--input", f"{k}={os.path.join(work, f'in.{k}.npy')}"]
        self.args += ["--threads", str(THREADS)]
        self.env = dict(os.environ)
        help_text = run_cmd([exe, "--help"]).stdout
        # --repeat N times every run; --warmup W runs W more first, untimed (fresh arena
        # pages, caches).  A binary from before --warmup is timed with its cold first run.
        self.has_warmup = "--warmup" in help_text

    def run(self, repeat, outputs=None, warmup=0):
        """Run the binary once as a process with --repeat `repeat`.  Returns a dict: min_ms,
        median_ms, runs, cores (CPU time / wall time of the process), or error."""
        argv = [self.exe, *self.args, "--repeat", str(repeat)]
        if warmup and self.has_warmup:
            argv += ["--warmup", str(warmup)]
        for name, path in (outputs or {}).items():
            argv += ["--output", f"{name}={path}"]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = run_cmd(argv, env=self.env)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        m = KILN_TIMES.search(r.stderr)
        if r.returncode != 0 or not m:
            return {"error": f"exit {r.returncode}: {r.stderr.strip()[-2000:]}"}
        return {"runs": int(m.group(1)), "min_ms": float(m.group(2)),
                "median_ms": float(m.group(3)), "cores": cpu / wall if wall > 0 else 0.0}


# ---------------------------------------------------------------------------------------
# ONNX Runtime (a node process; see ort_runner.js)

class Ort:
    """A running ort_runner.js; ask() sends one command and returns its answer (a dict), or
    raises RuntimeError with ONNX Runtime's message.  close() ends the process."""

    def __init__(self):
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "ort_runner.js")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ))

    def ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("ort_runner.js exited (see its messages above)")
        ans = json.loads(line)
        if not ans.get("ok"):
            raise RuntimeError("ONNX Runtime: " + ans.get("error", "?"))
        return ans

    def close(self):
        try:
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------
# PyTorch

def time_torch(module, tin, n):
    """Run `module` n times; returns (per-run ms list, cores busy)."""
    times = []
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(n):
            t0 = time.perf_counter()
            module(**tin)
            times.append((time.perf_counter() - t0) * 1e3)
    wall = time.perf_counter() - w0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return times, cpu / wall if wall > 0 else 0.0


# ---------------------------------------------------------------------------------------
# Checking

def rel_err(a, ref):
    """max |a - ref| / max |ref| (both float64 numpy arrays of one shape)."""
    if a.shape != ref.shape:
        return float("inf")
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(a - ref))) / scale


def compare(outs, names):
    """Errors between every pair of systems in `outs` (system -> name -> array), per output."""
    pairs = [("kiln", "torch"), ("kiln", "ort"), ("torch", "ort"),
             ("kiln", "float64"), ("torch", "float64"), ("ort", "float64")]
    res = {}
    for a, b in pairs:
        if a in outs and b in outs:
            res[f"{a}_vs_{b}"] = {n: rel_err(outs[a][n].astype(np.float64),
                                             outs[b][n].astype(np.float64)) for n in names}
    return res


# ---------------------------------------------------------------------------------------
# Timing

def summarize(rounds, key_med, key_min):
    """Median of the per-round medians and best of the per-round minimums."""
    if not rounds:
        return None
    return {"median_ms": statistics.median(r[key_med] for r in rounds),
            "best_ms": min(r[key_min] for r in rounds),
            "runs": sum(r["runs"] for r in rounds),
            "cores": statistics.median(r["cores"] for r in rounds),
            "rounds": rounds}


def per_round(t_est):
    """Runs per round for a system whose one run takes about t_est seconds."""
    r = int(SECONDS / ROUNDS / max(t_est, 1e-6))
    r = max(r, -(-MIN_RUNS // ROUNDS))
    return min(r, 200)


def warm_torch(module, tin):
    """Warm-up: at least 2 runs and WARMUP_S seconds.  Returns seconds per run."""
    times, _ = time_torch(module, tin, 2)
    while sum(times) < WARMUP_S * 1e3 and len(times) < 50:
        times += time_torch(module, tin, 1)[0]
    return statistics.median(times) / 1e3


def warm_ort(ort):
    """The same warm-up for ONNX Runtime.  Returns seconds per run."""
    times = ort.ask(cmd="run", n=2)["times_ms"]
    while sum(times) < WARMUP_S * 1e3 and len(times) < 50:
        times += ort.ask(cmd="run", n=1)["times_ms"]
    return statistics.median(times) / 1e3


def run_case(case, peak, bw):
    """Prepare, build, check and time one case; return its result dict (see report.py)."""
    params = cases.case_params(case, QUICK)
    work = os.path.join(WORK, case["id"] + ("-quick" if QUICK else ""))
    os.makedirs(work, exist_ok=True)
    flops, formula, wbytes = cases.flop_count(case, params)
    compute_ms = flops / (peak["gflops"] * 1e9) * 1e3
    memory_ms = wbytes / (bw["gbs"] * 1e9) * 1e3
    res = {"id": case["id"], "title": cases.case_title(case, QUICK), "family": case["family"],
           "spec": cases.FAMILIES[case["family"]]["spec"], "params": params,
           "batch": case["batch"], "seq": case["seq"], "seed": case["seed"],
           "flops": flops, "flop_formula": formula, "weight_bytes": wbytes,
           "floor": {"compute_ms": compute_ms, "memory_ms": memory_ms,
                     "ms": max(compute_ms, memory_ms),
                     "bound": "compute" if compute_ms >= memory_ms else "memory"},
           "status": "ok", "notes": [], "systems": {}}
    say(f"\n== {res['title']}   [{case['id']}]")

    # 1. prepare
    t0 = time.perf_counter()
    module = cases.build_module(case, params)
    inputs = cases.make_inputs(case, params)
    wrote = cases.write_case_files(case, params, module, inputs, work)
    say(f"   prepare: {'wrote' if wrote else 'reused'} weights, inputs and ONNX in "
        f"{os.path.relpath(work, ROOT)} ({time.perf_counter() - t0:.1f} s)")
    names = list(cases.FAMILIES[case["family"]]["module"].OUTPUTS)

    # 2. build
    exe = os.path.join(work, "kiln_model")
    if os.path.exists(exe):
        os.remove(exe)
    ok, secs, msg = kiln_build(res["spec"], params, exe)
    res["kiln_build_s"] = secs
    kiln = None
    if ok:
        say(f"   kiln build: {secs:.2f} s")
        kiln = Kiln(exe, work, inputs)
    else:
        res["status"], res["reason"] = "FAILED", "kiln build failed"
        res["notes"].append("kiln build failed: " + msg[-1500:])
        say(f"   kiln build FAILED after {secs:.2f} s:\n" + indent(msg[-1500:]))

    ort = Ort()
    try:
        loaded = ort.ask(cmd="load", model=os.path.join(work, "model.onnx"), threads=THREADS,
                         inputs={k: {"file": os.path.join(work, f"in.{k}.bin"),
                                     "dtype": "int64", "shape": list(v.shape)}
                                 for k, v in inputs.items()})
        res["ort_version"] = loaded["version"]

        # 3. check (the first run of each system is also its first warm-up run)
        outs = {}
        outs["torch"] = {k: v.numpy() for k, v in cases.run_torch(module, inputs).items()}
        outs["float64"] = cases.run_float64(module, inputs)
        saved = ort.ask(cmd="save", dir=work)["outputs"]
        outs["ort"] = {k: np.fromfile(v["file"], dtype="<f4").reshape(v["shape"])
                       for k, v in saved.items()}
        t_kiln = None
        if kiln:
            paths = {k: os.path.join(work, f"kiln.{k}.npy") for k in names}
            for p in paths.values():
                if os.path.exists(p):
                    os.remove(p)
            r = kiln.run(1, outputs=paths)
            if "error" in r:
                res["status"], res["reason"] = "FAILED", "kiln run failed"
                res["notes"].append("kiln run failed: " + r["error"])
                say("   kiln run FAILED:\n" + indent(r["error"]))
                kiln = None
            else:
                t_kiln = r["min_ms"] / 1e3
                outs["kiln"] = {k: np.load(p) for k, p in paths.items()}
        res["check"] = check = compare(outs, names)
        res["tol"] = TOL
        say(report.format_check(check, names, TOL))
        if kiln:
            bad = [(pair, n) for pair in ("kiln_vs_torch", "kiln_vs_ort")
                   for n in names if not check[pair][n] <= TOL]
            if bad:
                res["status"], res["reason"] = "FAILED", "outputs do not match"
                res["notes"].append("kiln's outputs do not match: " +
                                    ", ".join(f"{n} ({p})" for p, n in bad))
        del outs

        # 4. time
        tin = {k: torch.from_numpy(v) for k, v in inputs.items()}
        t_torch = warm_torch(module, tin)
        t_ort = warm_ort(ort)
        plan = {"torch": per_round(t_torch), "ort": per_round(t_ort)}
        if kiln:
            plan["kiln"] = per_round(t_kiln)
        res["plan"] = {"rounds": ROUNDS, "runs_per_round": plan,
                       "kiln_warmup_flag": bool(kiln and kiln.has_warmup)}
        say(f"   timing: {ROUNDS} rounds x runs per round " +
            ", ".join(f"{report.NAMES[s]} {n}" for s, n in plan.items()))
        rounds = {"kiln": [], "torch": [], "ort": []}
        meter = LoadMeter(pids=(ort.proc.pid,))
        for i in range(ROUNDS):
            if kiln:
                r = kiln.run(plan["kiln"], warmup=1)
                if "error" in r:
                    res["status"], res["reason"] = "FAILED", "kiln run failed"
                    res["notes"].append(f"kiln failed in round {i + 1}: {r['error']}")
                    kiln = None
                else:
                    rounds["kiln"].append(r)
                time.sleep(GAP_S)
            ts, cores = time_torch(module, tin, plan["torch"])
            rounds["torch"].append({"runs": len(ts), "min_ms": min(ts),
                                    "median_ms": statistics.median(ts), "cores": cores,
                                    "times_ms": ts})
            time.sleep(GAP_S)
            a = ort.ask(cmd="run", n=plan["ort"])
            ts = a["times_ms"]
            rounds["ort"].append({"runs": len(ts), "min_ms": min(ts),
                                  "median_ms": statistics.median(ts),
                                  "cores": a["cpu_ms"] / a["wall_ms"], "times_ms": ts})
            time.sleep(GAP_S)
            say(f"   round {i + 1}/{ROUNDS}: " + ", ".join(
                f"{report.NAMES[s]} {rs[-1]['median_ms']:.2f} ms"
                for s, rs in rounds.items() if rs and len(rs) == i + 1))
        res["load"] = meter.read()
        if res["load"]["other_cores"] > 0.25:
            say(f"   warning: other processes used {res['load']['other_cores']:.2f} cores "
                "on average while this case was timed: its figures are noisy")
        for s, rs in rounds.items():
            summary = summarize(rs, "median_ms", "min_ms")
            if summary:
                res["systems"][s] = summary
    finally:
        ort.close()
    del module
    gc.collect()

    # 5. derived figures
    for s, d in res["systems"].items():
        d["gflops"] = flops / (d["median_ms"] * 1e-3) * 1e-9
        d["share_of_peak"] = d["gflops"] / peak["gflops"]
    k = res["systems"].get("kiln")
    if k:
        for s in ("torch", "ort"):
            if s in res["systems"]:
                k[f"ratio_vs_{s}"] = k["median_ms"] / res["systems"][s]["median_ms"]
    res["targets"] = report.targets(res)
    return res


def indent(text, pre="      "):
    return "\n".join(pre + line for line in text.splitlines())


# ---------------------------------------------------------------------------------------

def main():
    now = datetime.datetime.now().astimezone()
    os.makedirs(WORK, exist_ok=True)
    wanted = [x for x in os.environ.get("BENCH_CASES", "").split(",") if x.strip()]
    selected = [c for c in cases.CASES if not wanted or c["id"] in wanted]
    run_decode = not wanted or decode.CASE_ID in wanted
    if not selected and not run_decode:
        sys.exit("bench: BENCH_CASES names no case; known: " +
                 ", ".join([c["id"] for c in cases.CASES] + [decode.CASE_ID]))

    out = {"date": now.strftime("%Y-%m-%d"), "time": now.isoformat(timespec="seconds"),
           "quick": QUICK, "threads": THREADS, "kiln_isa": ISA,
           "settings": {"rounds": ROUNDS, "min_runs": MIN_RUNS, "seconds_per_system": SECONDS,
                        "warmup_s": WARMUP_S, "tol": TOL}}
    out["machine"] = machine_info()
    with open("/proc/loadavg") as f:
        out["machine"]["loadavg_at_start"] = [float(x) for x in f.read().split()[:3]]
    out["software"] = software_info()
    say(f"kiln benchmark {out['time']}: {report.machine_line(out)}")
    if not os.path.exists(KILN):
        say(f"note: {KILN} does not exist (build kiln first): kiln is reported as not built")

    # Machine figures, measured now (the clock and the neighbours are today's).
    say("measuring the machine: FMA peak and read bandwidth ...")
    meter = LoadMeter()
    peak = probe("peak", THREADS, 0.5)
    peak["one_thread"] = probe("peak", 1, 0.5)
    # The floor needs the machine's peak, and other processes can only ever lower a
    # measurement: so the figure used is the larger of the T-thread measurement and T times
    # the 1-thread one (cores here are whole cores, not SMT siblings).  They agree on an idle
    # machine; the report prints both.
    peak["measured_gflops"] = peak["gflops"]
    peak["gflops"] = max(peak["gflops"],
                         min(THREADS, os.cpu_count() or 1) * peak["one_thread"]["gflops"])
    bw = probe("stream", THREADS, 1024)
    # The bandwidth trials scatter more than the peak's on a shared host; the median trial
    # is the figure (peak stays the best trial: preemption only ever lowers it).
    bw["best_gbs"] = bw["gbs"]
    bw["gbs"] = statistics.median(bw["trials"])
    out["peak"], out["bandwidth"] = peak, bw
    out["machine_load"] = meter.read()
    say(report.format_machine(out))

    # Compile time of bert-base at the spec's defaults, the figure the issue sets a target for.
    kb = {"spec": "models/bert.yaml", "params": "defaults (bert-base)", "target_s": 5.0,
          "seconds": []}
    if os.path.exists(KILN):
        exe = os.path.join(WORK, "bert-base-default")
        for _ in range(1 if QUICK else 2):      # twice: the first may read cold files
            ok, secs, msg = kiln_build("models/bert.yaml", None, exe)
            kb["seconds"].append(round(secs, 3))
            if not ok:
                kb["error"] = msg[-1500:]
                break
        kb["ok"] = "error" not in kb
        # Where the time goes: `kiln emit` alone (spec -> IR -> passes -> C); the rest of a
        # build is the C compiler on the generated file.
        t0 = time.perf_counter()
        r = run_cmd([KILN, "emit", "models/bert.yaml", "--isa", ISA, "-o", exe + ".c"],
                    cwd=ROOT)
        if r.returncode == 0:
            kb["emit_s"] = round(time.perf_counter() - t0, 3)
            with open(exe + ".c") as f:
                kb["generated_c_lines"] = sum(1 for _ in f)
    else:
        kb["ok"] = False
        kb["error"] = f"{KILN} does not exist"
    out["kiln_build_bert_base"] = kb
    say(report.format_build(kb))

    out["cases"] = []
    for case in selected:
        try:
            out["cases"].append(run_case(case, peak, bw))
        except Exception as e:  # a broken case is reported; the others still run
            traceback.print_exc()
            out["cases"].append({"id": case["id"], "title": cases.case_title(case, QUICK),
                                 "status": "ERROR", "reason": "harness error",
                                 "notes": [f"harness error: {e}"],
                                 "systems": {}})

    # The decode case (decode.py): ms per generated token, after the others.
    if run_decode:
        try:
            out["decode"] = decode.run(KILN, THREADS, QUICK, ROUNDS, bw, WORK, say,
                                       meter=lambda pids: LoadMeter(pids=pids), isa=ISA)
        except Exception as e:  # reported like a broken case
            traceback.print_exc()
            out["decode"] = {"id": decode.CASE_ID, "title": decode.title(QUICK),
                             "status": "ERROR", "reason": "harness error",
                             "notes": [f"harness error: {e}"], "systems": {}}

    out["report"] = report.format_all(out)
    say("\n" + out["report"])
    os.makedirs(RESULTS, exist_ok=True)
    # A quick run or a subset of the cases gets its own name, so it never overwrites the
    # day's full run: 2026-12-06-quick, 2026-12-06-bert-seq512.
    ran = [c["id"] for c in selected] + ([decode.CASE_ID] if run_decode else [])
    subset = "-" + "-".join(ran) if wanted else ""
    stem = os.path.join(RESULTS, out["date"] + ("-quick" if QUICK else "") + subset)
    report.write_json(out, stem + ".json")
    report.write_svg(out, stem + ".svg")
    say(f"\nwrote {os.path.relpath(stem, ROOT)}.json and .svg")


if __name__ == "__main__":
    main()
