"""Stateful tests: sequences of calls chained by the spec's links, judged by a model of the server's state.

schemathesis builds a state machine from openapi.yaml's links (most viewed -> stats of the top dashboard ->
record a view -> its logs -> one entry, ...). Every response goes through all checks, and contract_tests.model
checks what only history can prove: a recorded view counts exactly once in every place that shows counts,
the viewed dashboard comes first in the caller's recently viewed, its log holds the `view` entry.
"""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode

from contract_tests import loader, spec
from contract_tests.conftest import require_principal
from contract_tests.model import ServerModel

SETTINGS = loader.active()
schema = loader.load(SETTINGS, [GenerationMode.POSITIVE])
if not SETTINGS.writes_allowed:
    # Without writes the machine still chains the read operations; the write is left out, not faked.
    schema = schema.exclude(operation_id=[op.operation_id for op in spec.operations() if op.writes])


class ContractWorkflow(schema.as_state_machine()):
    # Set by the test before a run: the target and the token's user (if known).
    target = None
    user_id = None

    def setup(self):
        # Each scenario starts from the seeded data on an exclusive target; a shared one is never reset.
        self.target.reset()
        self.model = ServerModel(exclusive=self.target.exclusive, user_id=self.user_id)

    def get_call_kwargs(self, case):
        return self.target.call_kwargs()

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        super().validate_response(response, case, additional_checks=additional_checks, **kwargs)
        self.model.observe(response, case)


def test_stateful_workflows(target, settings):
    """Random workflows along the links; every response checked, and the model checked after each step."""
    principal = require_principal(settings, "full")
    ContractWorkflow.target = target
    ContractWorkflow.user_id = principal.user_id
    run_settings = hypothesis.settings(
        max_examples=settings.stateful_scenarios,
        stateful_step_count=settings.stateful_steps,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # shrinking would replay many scenarios against the target
        suppress_health_check=list(HealthCheck),
    )
    machine = hypothesis.seed(settings.seed)(ContractWorkflow)
    machine.run(settings=run_settings)


@pytest.fixture(autouse=True)
def _release_target():
    yield
    ContractWorkflow.target = None
