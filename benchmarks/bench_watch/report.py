"""The watch benchmark's text report: the batch's outcome and the watch against the fixed-interval wait."""

from __future__ import annotations

from typing import Any

from benchmarks import harness
from benchmarks.bench_watch.batch import LAUNCH_CONCURRENCY


def report(results: dict[str, Any]) -> str:
    w, b = results["watch"], results["baseline"]
    sim, real = results["settings_sim"], results["settings_real"]
    ww, bw = w["watch"], b["wait"]
    lines = [
        f"Watching {results['jobs']:,} concurrent export jobs; simulator at {results['time_scale']:g}x "
        f"({results['images']:,} images); " + harness.machine_text(results),
        f"polling (simulated): interval {sim['interval_s']:g} s, max_interval {sim['max_interval_s']:g} s, "
        f"max_rate {sim['max_rate_per_s']:g}/s  =  (real) {real['interval_s']:.4g} s, {real['max_interval_s']:.4g} s, "
        f"{real['max_rate_per_s']:g}/s",
        "",
        f"launch: {w['launch']['wall_s']:.2f} s for {w['launch']['requests']['export']:,} POSTs "
        f"({LAUNCH_CONCURRENCY} threads)",
        f"outcome: {w['succeeded']} succeeded ({w['verified']} verified), {w['failed']} failed; "
        f"every job final: {', '.join(f'{k} {v}' for k, v in w['states'].items() if v)}",
        "",
        f"{'':<34} {'watch (backoff)':>16} {'wait (fixed)':>14}",
        f"{'polls per job':<34} {ww['per_job']['poll']:>16.2f} {bw['per_job']['poll']:>14.2f}",
        f"{'verification HEADs per job':<34} {ww['per_job']['verify']:>16.2f} {bw['per_job']['verify']:>14.2f}",
        f"{'other requests per job':<34} {ww['per_job']['other']:>16.3f} {bw['per_job']['other']:>14.3f}",
        f"{'requests per job':<34} {ww['per_job']['total']:>16.2f} {bw['per_job']['total']:>14.2f}",
        f"{'polls per simulated job-hour':<34} {results['polls_per_job_hour']['watch']:>16.2f} "
        f"{results['polls_per_job_hour']['baseline']:>14.2f}",
        f"{'share of polls: longest 10 % jobs':<34} {ww['longest_tenth_share_of_polls']:>16.1%} "
        f"{bw['longest_tenth_share_of_polls']:>14.1%}",
        f"{'median gap between polls, sim s':<34} {ww['gap_sim_s']['median']:>16.0f} "
        f"{bw['gap_sim_s']['median']:>14.0f}",
        f"{'end seen after (median), sim s':<34} {ww['seen_final_after_sim_s']['median']:>16.0f} "
        f"{bw['seen_final_after_sim_s']['median']:>14.0f}",
        f"{'end seen after (p90), sim s':<34} {ww['seen_final_after_sim_s']['p90']:>16.0f} "
        f"{bw['seen_final_after_sim_s']['p90']:>14.0f}",
        f"{'wall s':<34} {ww['wall_s']:>16.2f} {bw['wall_s']:>14.2f}",
        f"{'requests per real s (mean)':<34} {ww['achieved_rate_per_real_s']:>16.0f} "
        f"{bw['achieved_rate_per_real_s']:>14.0f}",
        f"{'requests per real s (busiest s)':<34} {ww['requests_per_real_second']['max']:>16.0f} "
        f"{bw['requests_per_real_second']['max']:>14.0f}",
        f"{'seconds at >= 90 % of the cap':<34} {ww['requests_per_real_second']['at_cap']:>16} "
        f"{bw['requests_per_real_second']['at_cap']:>14}",
        f"{'sum of job durations, sim h':<34} {w['job_durations_sim']['sum_s'] / 3600:>16.1f} "
        f"{b['planned_durations_sim']['sum_s'] / 3600:>14.1f}",
        f"{'longest job, sim s':<34} {w['job_durations_sim']['max_s']:>16,.0f} "
        f"{b['planned_durations_sim']['max_s']:>14,.0f}",
        "",
        f"watch: simulated span {w['simulated_span_s']:,.0f} s (first submit to last end; longest job "
        f"{w['job_durations_sim']['max_s']:,.0f} s, median {w['job_durations_sim']['median_s']:,.0f} s) in "
        f"{ww['wall_s']:.1f} s of watching: {w['ratio_span_over_watch_wall']:.1f}x "
        f"({w['ratio_span_over_launch_plus_watch_wall']:.1f}x counting the launch)",
        f"polls watch / wait: {results['ratio_polls_watch_over_baseline']:.3f}",
    ]
    return "\n".join(lines)
