"""report.py: how bench.py's results are printed, and written as JSON and as an SVG chart.

Everything here reads the result dict bench.py builds (the same dict the JSON file holds):

  out["machine"], out["software"]          CPU model, ISA, versions
  out["peak"]["gflops"]                    FP32 FMA peak on `threads` threads (peak.c)
  out["bandwidth"]["gbs"]                  read bandwidth, GB/s (stream.c)
  out["kiln_build_bert_base"]["seconds"]   compile times of models/bert.yaml at its defaults
  out["cases"][i]                          one case: "systems" (kiln, torch, ort: median_ms,
                                           best_ms, gflops, share_of_peak, cores, rounds),
                                           "floor" (the roofline time), "check" (errors),
                                           "status" ("ok" or "FAILED"), "targets"
  out["decode"]                            the decode case (decode.py): "systems" (kiln, torch,
                                           ort: ms_per_token and prefill, each median_ms and
                                           best_ms; rounds), "floor" (ms_per_token at the
                                           read bandwidth), "check", "ids", "targets"

The SVG is written by hand (no plotting library on the machine): one group of horizontal
bars per case, median time on a log scale, so a system 100x slower than another still shows.
"""

import json
import math
import os

NAMES = {"kiln": "kiln", "torch": "PyTorch", "ort": "ONNX Runtime"}
SHORT = {"kiln": "kiln", "torch": "PyTorch", "ort": "ORT"}
COLORS = {"kiln": "#d9480f", "torch": "#1c7ed6", "ort": "#2b8a3e", "floor": "#868e96"}

# The targets, per case: kiln's median time as a fraction of each peer's.
TARGETS = {"ort": 0.85, "torch": 0.75}


def targets(case):
    """For each peer: kiln/peer median ratio, the target, and whether it is met.  A case
    that failed its check meets no target, whatever its times."""
    k = case["systems"].get("kiln")
    res = {}
    for peer, limit in TARGETS.items():
        ratio = k.get(f"ratio_vs_{peer}") if k else None
        p = case["systems"].get(peer)
        res[peer] = {"target": limit, "ratio": ratio,
                     "met": bool(ratio is not None and ratio <= limit
                                 and case["status"] == "ok"),
                     # the kiln median the target asked for in this run
                     "kiln_ms_needed": limit * p["median_ms"] if p else None}
    return res


def needed(x, flops, peak):
    """'; it asks for kiln <= 139.68 ms, 97.8% of the peak': what a missed target needed,
    in time and as the share of the FMA peak the whole forward would then run at."""
    ms = x.get("kiln_ms_needed")
    if x["met"] or not ms:
        return ""
    return (f"; it asks for kiln <= {ms:.2f} ms, "
            f"{100 * flops / (ms * 1e-3) * 1e-9 / peak:.1f}% of the peak")


# ---------------------------------------------------------------------------------------
# Text

def machine_line(out):
    m = out["machine"]
    cpu = m["cpu"] + (f" ({m['uarch']}, family {m['family']} model {m['model']})"
                      if m.get("uarch") else "")
    return (f"{cpu}, {m['isa']}, {m['cpus']} CPUs, {m['mem_gib']} GiB; "
            f"{out['threads']} threads{kiln_isa_note(out)}"
            f"{'; QUICK sizes' if out['quick'] else ''}")


def kiln_isa_note(out):
    """'; kiln built with --isa X' when the run chose kiln's ISA (BENCH_ISA), else ''."""
    isa = out.get("kiln_isa", "auto")
    return "" if isa == "auto" else f"; kiln built with --isa {isa}"


def format_machine(out):
    p, b, s = out["peak"], out["bandwidth"], out["software"]
    blas = s["torch_blas"]
    lines = [
        f"   FP32 FMA peak: {p['gflops']:.1f} GFLOP/s on {p['threads']} threads "
        f"({p['isa']}, {p['lanes']} lanes; measured on {p['threads']} threads "
        f"{p['measured_gflops']:.1f}, on 1 thread {p['one_thread']['gflops']:.1f})",
        f"   read bandwidth: {b['gbs']:.1f} GB/s on {b['threads']} threads over "
        f"{b['mib']} MiB (median trial; best {b['best_gbs']:.1f}; first touch "
        f"{b['first_touch_gbs']:.2f} GB/s)",
        f"   kiln {s['kiln_commit'] or '?'}; {s['clang']}; PyTorch {s['torch']} with "
        f"{', '.join(os.path.basename(x) for x in blas['libs']) or 'no BLAS library'}"
        f"{' (OpenBLAS core ' + blas['openblas_core'] + ')' if blas['openblas_core'] else ''};"
        f" node {s['node']}",
    ]
    return "\n".join(lines)


def format_build(kb):
    if not kb.get("seconds"):
        return f"   kiln build models/bert.yaml (bert-base): not run ({kb.get('error', '')})"
    times = ", ".join(f"{t:.2f}" for t in kb["seconds"])
    if not kb["ok"]:
        return (f"   kiln build models/bert.yaml (bert-base): FAILED after {times} s\n"
                + "\n".join("      " + x for x in kb["error"].splitlines()[-8:]))
    best = min(kb["seconds"])
    split = ""
    if "emit_s" in kb:
        split = (f"; kiln emit alone {kb['emit_s']:.2f} s for {kb['generated_c_lines']} lines "
                 f"of C, the rest is the C compiler")
    return (f"   kiln build models/bert.yaml (bert-base): {times} s "
            f"(target <= {kb['target_s']:g} s: {'met' if best <= kb['target_s'] else 'NOT met'})"
            + split)


def format_check(check, names, tol):
    """The error table of one case: max |a - b| / max |b| per output, for each pair."""
    lines = [f"   check: max |a - b| / max |b|, tolerance {tol:g} for kiln vs each peer"]
    width = max(len(n) for n in names)
    for pair, errs in check.items():
        a, b = pair.split("_vs_")
        label = f"{NAMES.get(a, a)} vs {NAMES.get(b, b)}"
        cells = "  ".join(f"{n:>{width}} {e:9.2e}" for n, e in errs.items())
        flag = ""
        if a == "kiln" and b in ("torch", "ort"):
            flag = "  ok" if all(e <= tol for e in errs.values()) else "  MISMATCH"
        lines.append(f"     {label:<27} {cells}{flag}")
    return "\n".join(lines)


def format_case(c, peak):
    lines = [f"{c['title']}   [{c['id']}]   status: {c['status']}"
             + (f" ({c['reason']})" if c.get("reason") else "")]
    if c["status"] == "ERROR":
        return "\n".join(lines + ["   " + n for n in c["notes"]])
    f = c["floor"]
    lines.append(f"   {c['flops'] / 1e9:.2f} GFLOP ({c['flop_formula']}); weights "
                 f"{c['weight_bytes'] / 2**20:.0f} MiB")
    lines.append(f"   floor {f['ms']:.2f} ms ({f['bound']}-bound: {f['compute_ms']:.2f} ms at "
                 f"{peak:.0f} GFLOP/s, {f['memory_ms']:.2f} ms to read the weights once)")
    lines.append(f"   {'system':<14}{'median ms':>11}{'best ms':>11}{'kiln/x':>9}"
                 f"{'GFLOP/s':>10}{'% peak':>8}{'cores':>7}{'runs':>6}")
    k = c["systems"].get("kiln")
    for s in ("kiln", "torch", "ort"):
        d = c["systems"].get(s)
        if not d:
            lines.append(f"   {NAMES[s]:<14}{'-':>11}  (not timed)")
            continue
        ratio = "" if s == "kiln" or not k else f"{k['median_ms'] / d['median_ms']:.2f}x"
        lines.append(f"   {NAMES[s]:<14}{d['median_ms']:11.2f}{d['best_ms']:11.2f}{ratio:>9}"
                     f"{d['gflops']:10.1f}{100 * d['share_of_peak']:7.1f}%"
                     f"{d['cores']:7.2f}{d['runs']:6d}")
    # The floor row: kiln's distance from it, and the GFLOP/s and share of peak it implies
    # (100% when compute-bound; less when reading the weights takes longer).
    k_floor = "" if not k else f"{k['median_ms'] / f['ms']:.1f}x"
    lines.append(f"   {'floor':<14}{f['ms']:11.2f}{'':11}{k_floor:>9}"
                 f"{c['flops'] / (f['ms'] * 1e-3) * 1e-9:10.1f}"
                 f"{100 * f['compute_ms'] / f['ms']:7.1f}%")
    t = c.get("targets", {})
    parts = []
    for peer in ("ort", "torch"):
        x = t.get(peer)
        if x and x["ratio"] is not None:
            parts.append(f"<= {x['target']:.2f}x {NAMES[peer]}: "
                         f"{'met' if x['met'] else 'not met'} ({x['ratio']:.2f}x"
                         f"{needed(x, c['flops'], peak)})")
    if parts:
        lines.append("   targets: " + "; ".join(parts)
                     + ("  [FAILED check: no win counted]" if c["status"] != "ok" else ""))
    load = c.get("load")
    if load:
        lines.append(f"   load: other processes used {load['other_cores']:.2f} cores on average "
                     f"during the timing rounds{' (NOISY)' if load['other_cores'] > 0.25 else ''}"
                     f"; hypervisor steal {load['steal_cores']:.2f}")
    for n in c.get("notes", []):
        # The first line that names an error, else the first line (compiler output is long).
        ls = n.splitlines() or [""]
        lines.append("   note: " + next((x for x in ls if "error" in x), ls[0]).strip()[:300])
    return "\n".join(lines)


def format_decode(d):
    """The decode case (bench/decode.py): ms per generated token and prefill ms per system,
    kiln's ratios, the bandwidth floor and the targets."""
    lines = [f"{d['title']}   [{d['id']}]   status: {d['status']}"
             + (f" ({d['reason']})" if d.get("reason") else "")]
    if d["status"] == "ERROR":
        return "\n".join(lines + ["   " + n for n in d["notes"]])
    f = d["floor"]
    lines.append(f"   batch 1, a {d['prompt']}-token prefill then {d['steps']} greedy steps of one "
                 f"token; every step reads {d['weight_bytes'] / 2**20:.0f} MiB of weight "
                 f"matrices (the tied LM head included; the key/value cache adds "
                 f"{d['cache_bytes_last_step'] / 2**20:.1f} MiB by the last step)")
    lines.append(f"   floor {f['ms_per_token']:.2f} ms/token: those weights read once at "
                 f"{f['bandwidth_gbs']:.1f} GB/s (bench/stream.c's median trial, this run; "
                 f"{f['ms_per_token_at_best_trial']:.2f} ms at its best trial, "
                 f"{f['best_trial_gbs']:.1f} GB/s)")
    lines.append(f"   {'system':<14}{'ms/token':>10}{'best':>8}{'tok/s':>8}{'kiln/x':>8}"
                 f"{'prefill ms':>12}{'best':>9}{'kiln/x':>8}{'cores':>7}{'steps':>7}")
    k = d["systems"].get("kiln")
    for s in ("kiln", "torch", "ort"):
        x = d["systems"].get(s)
        if not x:
            lines.append(f"   {NAMES[s]:<14}{'-':>10}  (not timed)")
            continue
        t, p = x["ms_per_token"], x["prefill"]
        r = pr = ""
        if k and s != "kiln":
            r = f"{k['ms_per_token']['median_ms'] / t['median_ms']:.2f}x"
            pr = f"{k['prefill']['median_ms'] / p['median_ms']:.2f}x"
        lines.append(f"   {NAMES[s]:<14}{t['median_ms']:10.2f}{t['best_ms']:8.2f}"
                     f"{x['tokens_per_s']:8.1f}{r:>8}{p['median_ms']:12.2f}{p['best_ms']:9.2f}"
                     f"{pr:>8}{x['cores']:7.2f}{x['steps']:7d}")
    kf = f"{k['ratio_vs_floor']:.2f}x" if k else ""
    lines.append(f"   {'floor':<14}{f['ms_per_token']:10.2f}{'':8}"
                 f"{1e3 / f['ms_per_token']:8.1f}{kf:>8}")
    parts = []
    for peer, label in (("ort", NAMES["ort"]), ("floor", "the bandwidth floor")):
        x = d.get("targets", {}).get(peer)
        if x and x["ratio"] is not None:
            parts.append(f"<= {x['target']:.2f}x {label}: "
                         f"{'met' if x['met'] else 'not met'} ({x['ratio']:.2f}x)")
    if parts:
        lines.append("   targets: " + "; ".join(parts)
                     + ("  [FAILED check: no win counted]" if d["status"] != "ok" else ""))
    load = d.get("load")
    if load:
        lines.append(f"   load: other processes used {load['other_cores']:.2f} cores on average "
                     f"during the timing rounds{' (NOISY)' if load['other_cores'] > 0.25 else ''}"
                     f"; hypervisor steal {load['steal_cores']:.2f}")
    for n in d.get("notes", []):
        ls = n.splitlines() or [""]
        lines.append("   note: " + next((x for x in ls if "error" in x), ls[0]).strip()[:300])
    return "\n".join(lines)


def format_all(out):
    lines = [f"kiln benchmark, {out['time']}",
             machine_line(out),
             f"fp32, batch 1; PyTorch inference_mode, ONNX Runtime CPU (graph optimization "
             f"'all', intra-op threads {out['threads']}, inter-op 1); median of per-round "
             f"medians, best single run", ""]
    lines.append(format_machine(out))
    ml = out.get("machine_load")
    if ml and ml["other_cores"] > 0.25:
        lines.append(f"   warning: other processes used {ml['other_cores']:.2f} cores while the "
                     "peak and bandwidth were measured: both may read low")
    lines.append(format_build(out["kiln_build_bert_base"]))
    for c in out["cases"]:
        lines.append("")
        lines.append(format_case(c, out["peak"]["gflops"]))
    if out.get("decode"):
        lines.append("")
        lines.append(format_decode(out["decode"]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Files

def finite(x):
    """`x` with every NaN or infinite float replaced by the string "nan", "inf" or "-inf"
    (strict JSON has no such numbers; a kiln output full of NaN must still be written)."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x


def write_json(out, path):
    """Write `out` to `path` atomically (a temporary name, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(finite(out), f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def svg_label(c, s):
    """The text after one bar: the time, and kiln's ratios or a peer's share of peak."""
    if s == "floor":
        v = c["floor"]["ms"]
    else:
        v = c["systems"][s]["median_ms"]
    text = f"{v:.1f} ms" if v < 1e3 else f"{v / 1e3:.2f} s"
    d = c["systems"].get(s)
    if s == "kiln":
        rs = [f"{d[f'ratio_vs_{p}']:.2f}x {SHORT[p]}" for p in ("torch", "ort")
              if f"ratio_vs_{p}" in d]
        if rs:
            text += " = " + ", ".join(rs)
    if d and "share_of_peak" in d:
        text += f"; {100 * d['share_of_peak']:.1f}% of peak"
    elif d and "share_of_bandwidth" in d:          # the decode case: memory-bound
        text += f"; {100 * d['share_of_bandwidth']:.0f}% of bandwidth"
    return text


def decode_chart_case(d):
    """The decode case (decode.py) in the shape write_svg draws: ms per token as the bars,
    the bandwidth floor as the floor; None if it has nothing to draw."""
    if d.get("status") == "ERROR" or not d.get("floor"):
        return None
    systems = {}
    for s, x in d["systems"].items():
        systems[s] = {"median_ms": x["ms_per_token"]["median_ms"],
                      "share_of_bandwidth": x["share_of_bandwidth"]}
        for p in ("torch", "ort"):
            if f"ratio_vs_{p}" in x:
                systems[s][f"ratio_vs_{p}"] = x[f"ratio_vs_{p}"]
    return {"title": d["title"] + ": ms per generated token", "status": d["status"],
            "reason": d.get("reason", ""), "load": d.get("load", {}), "systems": systems,
            "floor": {"ms": d["floor"]["ms_per_token"], "bound": "memory"}}


def write_svg(out, path):
    """A bar chart: per case, kiln / PyTorch / ONNX Runtime median ms and the roofline floor,
    on a log scale shared by all cases.  Written atomically."""
    W, left, plot_w, top = 1000, 130, 520, 92
    bar_h, gap, group_gap = 18, 4, 26
    rows = ("kiln", "torch", "ort", "floor")
    cs = [c for c in out["cases"] if c.get("floor")]
    if out.get("decode") and decode_chart_case(out["decode"]):
        cs.append(decode_chart_case(out["decode"]))
    values = []
    for c in cs:
        values.append(c["floor"]["ms"])
        values += [c["systems"][s]["median_ms"] for s in rows[:3] if s in c["systems"]]
    lo = 10 ** math.floor(math.log10(min(values))) if values else 1.0
    hi = 10 ** math.ceil(math.log10(max(values))) if values else 10.0
    if hi <= lo:
        hi = lo * 10

    def x(v):
        return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    group_h = 16 + len(rows) * (bar_h + gap)
    H = top + len(cs) * (group_h + group_gap) + 36
    m, p, b = out["machine"], out["peak"], out["bandwidth"]
    el = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
          f'viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
          f'<rect width="{W}" height="{H}" fill="white"/>',
          '<text x="8" y="22" font-size="16" font-weight="bold">kiln vs PyTorch vs ONNX Runtime'
          ': median time per forward pass (log scale, shorter is faster)</text>']
    sub1 = (f"{out['date']}: {m['cpu']}{' (' + m['uarch'] + ')' if m.get('uarch') else ''}, "
            f"{m['isa']}, {out['threads']} threads{kiln_isa_note(out)}, fp32, batch 1"
            f"{', QUICK sizes (2 layers, width 128)' if out['quick'] else ''}")
    sub2 = (f"floor = max(FLOPs / {p['gflops']:.0f} GFLOP/s FMA peak, weight bytes / "
            f"{b['gbs']:.0f} GB/s read bandwidth), both measured in the same run")
    el.append(f'<text x="8" y="42" fill="#495057">{esc(sub1)}</text>')
    el.append(f'<text x="8" y="58" fill="#495057">{esc(sub2)}</text>')
    d = lo
    while d <= hi * 1.0001:
        gx = x(d)
        el.append(f'<line x1="{gx:.1f}" y1="{top - 14}" x2="{gx:.1f}" y2="{H - 30}" '
                  f'stroke="#dee2e6"/>')
        label = f"{d:g} ms" if d < 1e3 else f"{d / 1e3:g} s"
        el.append(f'<text x="{gx:.1f}" y="{H - 14}" text-anchor="middle" fill="#495057">'
                  f'{label}</text>')
        d *= 10
    y = top
    for c in cs:
        el.append(f'<text x="8" y="{y}" font-weight="bold">{esc(c["title"])}')
        if c["status"] != "ok":
            el.append(f'<tspan dx="10" fill="#c92a2a">{esc(c["status"])}: '
                      f'{esc(c.get("reason", ""))}; no win counted</tspan>')
        load = c.get("load", {}).get("other_cores", 0)
        if load > 0.25:
            el.append(f'<tspan dx="10" fill="#e67700">(noisy: other processes used {load:.1f} '
                      f'cores)</tspan>')
        el.append('</text>')
        y += 8
        for s in rows:
            name = f"floor ({c['floor']['bound']})" if s == "floor" else NAMES[s]
            el.append(f'<text x="{left - 8}" y="{y + bar_h - 5}" text-anchor="end">'
                      f'{esc(name)}</text>')
            if s != "floor" and s not in c["systems"]:
                why = "not timed" + (f" ({c['reason']})" if s == "kiln" and c.get("reason")
                                     else "")
                el.append(f'<text x="{left + 4}" y="{y + bar_h - 5}" fill="#868e96">'
                          f'{esc(why)}</text>')
            else:
                v = c["floor"]["ms"] if s == "floor" else c["systems"][s]["median_ms"]
                w = max(x(v) - left, 1.0)
                extra = ' fill-opacity="0.4"' if s == "kiln" and c["status"] != "ok" else ""
                el.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                          f'fill="{COLORS[s]}"{extra}/>')
                label = svg_label(c, s)
                if left + w + 5 + 6.8 * len(label) <= W - 4:    # after the bar
                    el.append(f'<text x="{left + w + 5:.1f}" y="{y + bar_h - 5}">'
                              f'{esc(label)}</text>')
                else:                                           # inside it, at its end
                    el.append(f'<text x="{left + w - 5:.1f}" y="{y + bar_h - 5}" '
                              f'text-anchor="end" fill="white">{esc(label)}</text>')
            y += bar_h + gap
        y += group_gap
    el.append("</svg>")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(el) + "\n")
    os.replace(tmp, path)
