"""A graph that passes the operator allowlist but writes into its own weights (real harness)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_a_graph_that_remembers_windows_through_an_out_overload_is_rejected(make_tree, evaluate):
    # tests/evaluate/programs/model_out_overload.py: max.dim_max writes each row into a
    # weight; remembering every row, it reads ahead on scored windows and passes the probes
    # (perplexity 1.18 against the honest bigram's 13.6 on the same windows before the fix)
    result = evaluate(make_tree(model="model_out_overload.py", timeout_s=120.0)).result
    assert result["status"] == "rejected", (result["status"], result["reason"])
    assert "max.dim_max" in result["reason"] and result["metrics"] is None
