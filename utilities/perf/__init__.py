"""Performance commands and their analysis: load runs, the gate, bench, ws-bench, scaling, chaos, plots.

Names load on first use (``utilities._lazy``).
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

_EXPORTS = {
    "BASELINES_DIR": "gate",
    "Baseline": "gate",
    "Distribution": "ws_bench_point",
    "DownloadPoint": "download_bench",
    "MIB": "server_memory",
    "MemorySampler": "server_memory",
    "MemorySource": "server_memory",
    "ContractLimit": "gate",
    "RegressionRule": "gate",
    "Point": "ws_bench_point",
    "Profile": "batch_timing",
    "REPORTS_DIR": "load",
    "CpuShare": "host_load",
    "wait_for_quiet": "host_load",
    "Run": "batch_timing",
    "SocketWatcher": "socket_watcher",
    "Spread": "batch_timing",
    "audit": "ledger_audit",
    "LedgerReport": "ledger_audit",
    "bench_command": "bench",
    "chaos_command": "chaos",
    "checks_table": "gate",
    "gate_run": "gate",
    "gate_audit_command": "gate_audit",
    "trend_command": "trend",
    "Calibration": "calibration",
    "probe": "calibration",
    "download_bench_command": "download_bench",
    "default_baseline": "gate",
    "evaluate": "gate",
    "fmt_num": "gate",
    "gate_command": "gate",
    "ideal_schedule_s": "batch_timing",
    "linear_fit": "scaling",
    "load_command": "load",
    "measure": "batch_timing",
    "memory_growth": "server_memory",
    "percentile": "load_summary",
    "prompts": "cluster_inputs",
    "raise_fd_limit": "ws_bench",
    "read_history": "gate_history",
    "rolling_baseline": "gate_history",
    "read_row_numbers": "batch_timing",
    "rebaseline": "gate_rebaseline",
    "render_markdown": "ws_bench_report",
    "row_number_problems": "batch_timing",
    "scale_command": "scale_workers",
    "scaling_command": "scaling",
    "summarize": "batch_timing",
    "summarize_entries": "load_summary",
    "wide_console": "gate",
    "write_index": "report",
    "write_load_report": "report",
    "write_scaling_report": "report",
    "ws_bench_command": "ws_bench",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
