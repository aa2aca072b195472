"""Independent oracles: read an uploaded file and a results download without the backend's code, and judge them.

Names load on first use (``utilities._lazy``).
"""

from __future__ import annotations

from utilities._lazy import lazy_exports

_EXPORTS = {
    "CSV_HEAD": "download_reader",
    "DeliveryReport": "delivery",
    "check_compression": "delivery",
    "check_conditional": "delivery",
    "check_delivery": "delivery",
    "check_ranges": "delivery",
    "check_signed_link": "delivery",
    "request_link": "delivery",
    "CSV_TAIL": "download_reader",
    "DANGEROUS_PREFIXES": "download_reader",
    "Download": "download_reader",
    "DownloadRow": "download_reader",
    "FORMATS": "download_reader",
    "InputFormatError": "input_reader",
    "InputTable": "input_reader",
    "NEUTRALISER": "download_reader",
    "RESERVED_COLUMNS": "download_reader",
    "TECHNIQUE_SEPARATOR": "download_reader",
    "ZIP_MEMBERS": "download_reader",
    "assert_error": "contract_checks",
    "assert_rows_agree": "contract_checks",
    "assert_status_invariants": "contract_checks",
    "error_problems": "contract_checks",
    "leaked": "contract_checks",
    "own_prompt_problems": "contract_checks",
    "progression_problems": "contract_checks",
    "rows_agree_problems": "contract_checks",
    "status_problems": "contract_checks",
    "unique_marker": "contract_checks",
    "assert_download_matches": "download_validator",
    "assert_downloads_equivalent": "download_comparison",
    "compare_downloads": "download_comparison",
    "ComparisonReport": "download_comparison",
    "ValidationReport": "download_validator",
    "load_download": "download_reader",
    "parse_csv": "download_reader",
    "parse_json": "download_reader",
    "parse_zip": "download_reader",
    "primary_part": "download_reader",
    "read_input": "input_reader",
    "read_pasted": "input_reader",
    "unneutralise": "download_reader",
    "validate": "download_validator",
    "validate_command": "validate_cli",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
