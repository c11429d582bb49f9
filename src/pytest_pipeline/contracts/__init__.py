"""Transform contract tests: one declaration in a unit test module, one test per scenario.

``test_normalize = transform_contract(normalize, sample="raw/events.jsonl", required=[...])``
expands at collection into ``test_normalize[happy_path]``, ``[empty_input]``,
``[missing_required:<field>]``, ... (see docs/transforms.md for every scenario's meaning).
Importing this package loads no pandas or pyarrow; they load when a DataFrame or Table is tested.
"""

from __future__ import annotations

from pytest_pipeline.errors import ContractError

#: The attribute ``transform_contract`` sets on the test it returns (read at collection).
CONTRACT_ATTR = "__pipeline_contract__"
#: The argument each expanded scenario test receives its case in.
CASE_ARG = "pipeline_contract_case"

# Imported with the plugin on purpose: pytester's in-process runs drop modules first imported
# inside them, and a contract declared in one must be of the class the plugin checks.
from pytest_pipeline.contracts.spec import EdgeCase, edge_case, transform_contract  # noqa: E402

__all__ = ["ContractError", "EdgeCase", "edge_case", "transform_contract"]
