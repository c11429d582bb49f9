"""Transform contract tests: one declaration in a unit test module, one test per scenario.

``test_normalize = transform_contract(normalize, sample="raw/events.jsonl", required=[...])``
expands at collection into ``test_normalize[happy_path]``, ``[empty_input]``,
``[missing_required:<field>]``, ... (see docs/transforms.md for every scenario's meaning).
Importing this package loads no pandas or pyarrow; they load when a DataFrame or Table is tested.
"""

from __future__ import annotations

from pytest_pipeline.contracts.spec import ContractError, EdgeCase, edge_case, transform_contract

__all__ = ["ContractError", "EdgeCase", "edge_case", "transform_contract"]
