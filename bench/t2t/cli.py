"""`tickpath bench --t2t [--paths ...] [--scenarios ...] [--trigger-rates ...] [--sweep]`:
wall-to-wall tick-to-trade of every responder path against the venue, side by side in one run
(bench/t2t/run.py), written like the receive bench (summary.json, .hgrm, report.md, PNGs,
--compare OLD_DIR)."""
from __future__ import annotations

import os

from tickpath.runtime.core.errors import ConfigError


def add_arguments(g) -> None:
    g.add_argument("--t2t", action="store_true",
                   help="tick-to-trade wall to wall against the venue instead of the receive bench")
    g.add_argument("--paths", default="floor,kernel,kernel-busypoll,kernel-veth,afxdp,fpga-emu,python",
                   help="--t2t: responder paths (floor = the C reflector; kernel-veth and afxdp run over a "
                        "veth pair between two network namespaces: root)")
    g.add_argument("--afxdp-mode", default="skb", choices=("skb", "drv"),
                   help="--t2t: XDP attach mode of the afxdp path on the veth (skb = generic)")
    g.add_argument("--scenarios", default="steady",
                   help="--t2t: steady, open-burst, storm, wide (comma list)")
    g.add_argument("--trigger-rates", default="1000", help="--t2t: triggers per second (comma list)")


def _list(text: str, allowed, what: str) -> tuple:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise ConfigError(f"unknown {what}", given=bad or text, allowed=",".join(allowed))
    return items


def cmd_t2t(args, progress=print) -> int:
    from tickpath.bench.harness.run import parse_cpus, parse_rates
    from tickpath.bench.t2t import report, run as T
    paths = _list(args.paths, T.PATHS, "path")
    scenarios = _list(args.scenarios, tuple(T.SCENARIOS), "scenario")
    rates = parse_rates(args.trigger_rates)
    tx, rx, _ = parse_cpus(args.cpus) if args.cpus else (0, 1, None)
    if args.compare and not os.path.exists(os.path.join(args.compare, "summary.json")):
        raise ConfigError("--compare needs a previous --t2t output directory", dir=args.compare)
    if os.path.exists(os.path.join(args.out, "summary.json")) and not args.force:
        raise ConfigError("the output directory holds a previous run (use --force or another --out)", dir=args.out)
    p = T.T2TParams(paths=paths, scenarios=scenarios, seconds=args.seconds, repeats=args.repeats,
                    seed=args.seed, venue_cpu=tx, rx_cpu=rx, quiet=args.quiet,
                    afxdp_mode=getattr(args, "afxdp_mode", "skb"))
    quiet_progress = (lambda *a, **k: None) if args.quiet else progress
    if args.sweep:
        summary = T.sweep(p, rates, args.p99_bound_us * 1e3, quiet_progress)
    else:
        summary = T.run_rates(p, rates, quiet_progress)
    written = report.write_all(summary, args.out, args.compare)
    print(report.markdown(summary))
    print(f"wrote {len(written)} files to {args.out}")
    failed = [1 for _, _, v in report.rows(summary) if not v.get("skipped") and not v.get("aggregate", {}).get("ok_runs")]
    return 1 if failed else 0
