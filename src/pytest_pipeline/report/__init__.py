"""The run report: ``--pipeline-report`` JSON and the ``pytest-pipeline report`` command."""
