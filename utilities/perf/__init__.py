"""Performance commands and their analysis: load runs, the gate, bench, ws-bench, scaling, chaos, plots.

Names load on first use (``utilities._lazy``).
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

_EXPORTS = {
    "BASELINES_DIR": "gate",
    "Baseline": "gate",
    "Distribution": "ws_bench",
    "DownloadPoint": "download_bench",
    "MIB": "server_memory",
    "MemorySampler": "server_memory",
    "MemorySource": "server_memory",
    "ContractLimit": "gate",
    "RegressionRule": "gate",
    "Point": "ws_bench",
    "Profile": "bench",
    "REPORTS_DIR": "load",
    "CpuShare": "host_load",
    "wait_for_quiet": "host_load",
    "Run": "bench",
    "SocketWatcher": "chaos",
    "Spread": "bench",
    "audit": "chaos",
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
    "ideal_schedule_s": "bench",
    "linear_fit": "scaling",
    "load_command": "load",
    "machine_facts": "bench",
    "measure": "bench",
    "memory_growth": "server_memory",
    "percentile": "load_summary",
    "prompt_csv": "bench",
    "prompts": "chaos",
    "raise_fd_limit": "ws_bench",
    "read_history": "gate_history",
    "rolling_baseline": "gate_history",
    "read_row_numbers": "bench",
    "rebaseline": "gate_rebaseline",
    "render_markdown": "ws_bench",
    "row_number_problems": "bench",
    "scale_command": "chaos",
    "scaling_command": "scaling",
    "summarize": "bench",
    "summarize_entries": "load_summary",
    "wide_console": "gate",
    "write_index": "report",
    "write_load_report": "report",
    "write_scaling_report": "report",
    "ws_bench_command": "ws_bench",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
