"""The data quality and leakage audit: small named rules, each a finding with a severity.

- `scan_table`: one aggregate scan for what the profile does not give (duplicates, infinities,
  string shapes);
- `table_findings`: the rules on the profile, the scan and the inferred types;
- `near_constant`, `class_imbalance`, `target_leakage`: rules on the seeded sample and labels;
- `row_order_leakage`: identifiers whose order predicts the target;
- `split_leakage`: rows repeated across the written splits; `split_balance`: classes missing
  from a split, label shift across a time or group split.

Error findings stop the data phase; rules that set `Finding.exclude` take their column out of
the features unless the user lists it in `[data] keep`.
"""

from mlwizard.core.data.audit.balance import split_balance
from mlwizard.core.data.audit.findings import Finding, Severity, errors, ordered
from mlwizard.core.data.audit.leakage import (
    row_hashes,
    row_order_leakage,
    sample_indices,
    split_leakage,
    target_leakage,
)
from mlwizard.core.data.audit.rules import (
    TableFacts,
    class_imbalance,
    near_constant,
    no_features,
    table_findings,
)
from mlwizard.core.data.audit.scan import ColumnScan, TableScan, scan_table

__all__ = [
    "ColumnScan",
    "Finding",
    "Severity",
    "TableFacts",
    "TableScan",
    "class_imbalance",
    "errors",
    "near_constant",
    "no_features",
    "ordered",
    "row_hashes",
    "row_order_leakage",
    "sample_indices",
    "scan_table",
    "split_balance",
    "split_leakage",
    "table_findings",
    "target_leakage",
]
