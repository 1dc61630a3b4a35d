"""Your own features: columns computed from each row's raw values.

The pipeline picks this file up by itself:
- the data phase adds what `derive` returns to your data, so the profile, the audit, the splits
  and the model see those columns like any other (`artifacts/data/schema.json` lists them under
  "derived", with the raw columns each is computed from);
- the deployed service and `mlwizard predict` run the same function before the model, so callers
  keep sending the raw columns;
- editing this file reruns the data phase and everything after it (`mlwizard status` says so).

`columns` maps each column of your data (except the target) to a numpy array with one value per
row: columns your file holds as numbers arrive as float64 (NaN where missing), every other column
(text, dates, yes/no) as an array of strings (None where missing). The arrays are read-only.

Return a dict {new column name: array with one value per row}: numbers (infinities count as
missing) or strings. Compute each row from that row's values only (no column means, ranks or
shifts): the service derives each request on its own. Use numpy and the standard library only:
the service bundle has nothing else. Return {} to derive nothing.
"""

from collections.abc import Mapping

import numpy as np


def derive(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    features: dict[str, np.ndarray] = {}
    # An example: the ratio of two columns, and a flag (rename to your own columns):
    # income = columns["income"]
    # debt = columns["debt"]
    # with np.errstate(divide="ignore", invalid="ignore"):
    #     features["debt_to_income"] = np.where(income > 0, debt / income, np.nan)
    # features["is_weekend"] = np.isin(columns["weekday"], ["Sat", "Sun"])
    return features
