"""Unit layer: the transform scenarios every transform owes, declared once for ``normalise``.

The declaration expands into one test per scenario: ``test_normalise_contract[happy_path]``,
``[empty_input]``, ``[input_not_mutated]``, ``[deterministic]``, ``[missing_required:amount]``,
``[null_required:amount]``, ``[boundary:amount=0]`` (the raw amount is the sample's one
numeric field), ... and the domain's own edge cases below. ``normalise`` does not raise on a
bad event: it sends it to the dead-letter queue, so ``rejects=`` says where rejected events go.
"""

from __future__ import annotations

from payments.transforms.payments import REQUIRED, normalise

from pytest_pipeline import edge_case, transform_contract

EVENT = {
    "payment_id": "p-1",
    "merchant": "cafe",
    "amount": 1,
    "currency": "EUR",
    "created_at": "2024-05-01T09:15:00Z",
}

test_normalise_contract = transform_contract(
    normalise,
    sample="payments/raw/events.jsonl",
    expected="payments/expected/normalised.jsonl",
    required=REQUIRED,
    output=lambda split: split.valid,
    rejects=lambda split: split.rejected,
    edge_cases={
        # The sample's first event (12.50 EUR) with these fields replaced.
        "yen_has_no_minor_units": edge_case(
            {"currency": "JPY", "amount": 500},
            expect=lambda valid: valid[0]["amount_minor"] == 500,
        ),
        "half_a_cent_rounds_to_even": edge_case(
            {"currency": "USD", "amount": 2.665},
            expect=lambda valid: valid[0]["amount_minor"] == 266,
        ),
        "a_local_time_is_rejected": edge_case(
            {"created_at": "2024-05-01 09:15"}, expect=lambda valid: valid == []
        ),
        "a_redelivery_is_dropped": edge_case(
            [EVENT, dict(EVENT)], expect=lambda valid: len(valid) == 1
        ),
    },
)
