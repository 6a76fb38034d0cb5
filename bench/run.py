"""Benchmark infiniscale against Apache mod_dav_fs and rclone serve webdav, all on loopback.

Usage: python bench/run.py [--quick] [--only infiniscale,apache] [--workloads small,propfind,big,tree]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

# benchlib is found because Python puts this script's directory first on sys.path
from benchlib import report, servers, workloads
from benchlib.dav import Conn, DavError, Pattern, basic_auth
from benchlib.measure import Result
from benchlib.procs import RssSampler
from benchlib.workloads import Config, Metric, Target

SERVERS = ["infiniscale", "apache", "rclone"]
GROUPS = ["small", "propfind", "big", "tree", "auth"]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RSS = Metric("peak_rss", "peak RSS (process tree)", "MiB", False)
PSS = Metric("peak_pss", "peak PSS (process tree)", "MiB", False)

Runner = Callable[[Target, Config, dict[str, Result]], None]
RoundResults = dict[str, dict[str, list[Result]]]  # metric key -> server -> one result per round


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(SERVERS), help="comma-separated servers to run")
    p.add_argument("--workloads", default=",".join(GROUPS), help=f"comma-separated subset of {GROUPS}")
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run (about a minute)")
    p.add_argument("--rounds", type=int, default=1, help="repeat everything; report the median (default 1)")
    p.add_argument("--tmpdir", type=Path, default=None, help="where the temp dir goes (default: system tmp)")
    p.add_argument("--keep-tmp", action="store_true", help="keep data and server logs for debugging")
    p.add_argument("--infiniscale-bin", type=Path, default=servers.default_infiniscale_bin())
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    args.only = _pick(p, args.only, SERVERS, "--only")
    args.workloads = _pick(p, args.workloads, GROUPS, "--workloads")
    return args


def _pick(p: argparse.ArgumentParser, value: str, allowed: list[str], flag: str) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    if bad := [v for v in chosen if v not in allowed]:
        p.error(f"{flag}: unknown {bad}; choose from {allowed}")
    return [a for a in allowed if a in chosen]  # canonical order keeps table columns stable


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop servers and remove data


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    cfg = workloads.QUICK if args.quick else workloads.FULL
    groups = workloads.metrics(cfg)
    tmp = Path(tempfile.mkdtemp(prefix="infiniscale-bench-", dir=args.tmpdir))
    rounds: RoundResults = {}
    notes: dict[str, str] = {}
    started = time.time()
    load_start = _loadavg()
    if (load := os.getloadavg()[0]) > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} before start; other work will add noise", flush=True)
    try:
        run_all(args, cfg, tmp, rounds, notes)
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results = {key: {srv: Result.merge(rs) for srv, rs in row.items()} for key, row in rounds.items()}
    shown = [m for g in args.workloads for m in groups[g]] + [RSS, PSS]
    shown += [Metric(f"rss_{g}", f"  peak RSS during {g}", "MiB", False) for g in args.workloads]
    for m in shown:  # a server that never started fails every figure, not just the RSS one
        for name in args.only:
            if not m.only or m.only == name:
                results.setdefault(m.key, {}).setdefault(name, Result.failed("server did not start"))
    print("\nratio > 1 means infiniscale is better: throughput ours/apache; ms and MiB apache/ours")
    if args.rounds > 1:
        print(f"each figure is the median of {args.rounds} rounds")
    print("\n" + report.table(shown, results, args.only))
    print("\n" + report.cpu_table(shown, results, args.only))
    if line := report.tus_vs_put(results):
        print("\n" + line)
    for line in report.failures(results):
        print(f"FAILED {line}")
    out = RESULTS_DIR / time.strftime("%Y%m%d-%H%M%S.json", time.localtime(started))
    report.write_json(out, _meta(args, cfg, started, load_start, notes), shown, results)
    print(f"\nresults: {out}  ({time.time() - started:.0f}s)")
    return 1 if report.failures(results) else 0


def run_all(args: argparse.Namespace, cfg: Config, tmp: Path, rounds: RoundResults,
            notes: dict[str, str]) -> None:
    """Start the servers, run the workload groups with rotating server order, stop everything."""
    sampler = RssSampler()
    targets: list[Target] = []
    try:
        sampler.start()
        for name in args.only:
            if t := _start_target(name, tmp, args.infiniscale_bin, cfg, sampler, rounds):
                targets.append(t)
        runners = _runners(args.workloads, cfg)
        for r in range(args.rounds):
            _run_round(r, args, cfg, targets, runners, rounds, notes, sampler)
    finally:
        sampler.phase = "shutdown"
        sampler.close()
        for t in targets:
            t.dav.close()
            t.server.stop()
    for t in targets:
        rounds.setdefault(RSS.key, {})[t.name] = [Result(value=sampler.peak[t.name] / 2**20)]
        rounds.setdefault(PSS.key, {})[t.name] = [Result(value=sampler.peak_pss.get(t.name, 0) / 2**20)]
        print(f"peak RSS of {t.name} by process (pid:MiB): {sampler.peak_detail.get(t.name, '')}", flush=True)


def _run_round(r: int, args: argparse.Namespace, cfg: Config, targets: list[Target],
               runners: dict[str, Runner], rounds: RoundResults, notes: dict[str, str],
               sampler: RssSampler) -> None:
    if args.rounds > 1:
        print(f"=== round {r + 1}/{args.rounds}", flush=True)
    for t in targets:
        t.base = f"bench/r{r}/"  # fresh folders every round
        _quietly(lambda t=t: t.dav.mkcol(t.base))
    for i, group in enumerate(args.workloads):
        # rotate who goes first so no server always profits from (or pays for) its position
        k = (i + r) % len(targets) if targets else 0
        for t in targets[k:] + targets[:k]:
            sampler.phase = f"round {r + 1} {group} on {t.name}"
            sampler.reset_window(t.name)
            rec = _run_group(group, runners[group], t, cfg, notes)
            rss = sampler.window_peak(t.name) / 2**20
            rec[f"rss_{group}"] = Result(value=rss)
            print(f"    peak RSS during {group}: {rss:.0f} MiB", flush=True)
            for key, res in rec.items():
                rounds.setdefault(key, {}).setdefault(t.name, []).append(res)


def _quietly(action: Callable[[], None]) -> None:
    """Setup steps whose failure will show up, with a better message, in the workloads that follow."""
    try:
        action()
    except Exception as e:
        print(f"  setup step failed: {e}", flush=True)


def _start_target(name: str, tmp: Path, bin_: Path, cfg: Config, sampler: RssSampler,
                  rounds: RoundResults) -> Target | None:
    print(f"starting {name} ...", flush=True)
    try:
        srv = servers.start(name, tmp / name, bin_)
    except (servers.ServerError, OSError) as e:
        print(f"  {name} did not start: {e}", flush=True)
        rounds.setdefault(RSS.key, {})[name] = [Result.failed(f"did not start: {str(e)[:300]}")]
        return None
    sampler.watch(name, srv.pid)
    t = Target(srv, Conn(srv.dav_root, basic_auth(servers.USER, servers.PASSWORD)), base="bench/")
    _quietly(lambda: workloads.warm_up(t, cfg.conc))
    print(f"  {name} ready at {srv.dav_root} (pid {srv.pid})", flush=True)
    return t


def _runners(groups: list[str], cfg: Config) -> dict[str, Runner]:
    runners: dict[str, Runner] = {"small": workloads.run_small, "propfind": workloads.run_propfind,
                                  "tree": workloads.run_tree, "auth": workloads.run_auth}
    if "big" in groups:
        pattern = Pattern(cfg.big_size)
        t0 = time.perf_counter()
        sha1 = pattern.sha1()  # the stream is regenerated for each PUT, so the hash is known up front
        print(f"big file: {cfg.big_size >> 20} MiB, sha1 {sha1} ({time.perf_counter() - t0:.1f}s)")
        runners["big"] = lambda t, c, rec: workloads.run_big(t, c, rec, pattern, sha1)
    return runners


def _run_group(group: str, run: Runner, t: Target, cfg: Config, notes: dict[str, str]) -> dict[str, Result]:
    """Run one group on one server; anything it could not produce is recorded as FAILED with the reason."""
    print(f"[{group}] {t.name} ...", flush=True)
    rec: dict[str, Result] = {}
    error = None
    t0 = time.perf_counter()
    try:
        run(t, cfg, rec)
    except DavError as e:
        error = str(e)
    except Exception as e:  # transport errors, crashed server, malformed XML: all mean "no figure"
        error = f"{type(e).__name__}: {e}"
        if os.environ.get("BENCH_DEBUG"):
            traceback.print_exc()
    if error and (code := t.server.proc.poll()) is not None:
        error += f" (server exited with {code})"
        if t.name not in notes:  # show why it died, once
            notes[t.name] = f"exited with {code}; log tail:\n{t.server.log_tail()}"
            print(f"  {t.name} {notes[t.name]}", flush=True)
    out = {}
    for m in workloads.metrics(cfg)[group]:
        if m.only and m.only != t.name:
            continue
        res = out[m.key] = rec.get(m.key) or Result.failed(error or "not measured")
        shown = report.fmt(res.value) if res.value is not None else f"FAILED ({res.error})"
        print(f"    {m.label:<28} {shown} {m.unit if res.value is not None else ''}", flush=True)
    print(f"    ({time.perf_counter() - t0:.1f}s)", flush=True)
    return out


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _meta(args: argparse.Namespace, cfg: Config, started: float, load_start: str,
          notes: dict[str, str]) -> dict[str, object]:
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "kernel": platform.release(), "quick": args.quick, "servers": args.only,
        "workloads": args.workloads, "config": dataclasses.asdict(cfg),
        "rounds": args.rounds, "versions": servers.versions(args.only, args.infiniscale_bin),
        "loadavg_start": load_start, "loadavg_end": _loadavg(), "server_exits": notes,
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
