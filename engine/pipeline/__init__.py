"""The build pipeline: registered steps (``engine/pipeline/steps/``), ordered by their
dependencies and hashed from config, code and inputs; ``run_build`` brings a catalog's artifacts
up to date and ``check`` says whether they can be served.
"""

from engine.pipeline.planner import code_hash, ordered_steps, package_versions, plan
from engine.pipeline.run import run_build
from engine.pipeline.status import BuildStatus, check, rebuild_command
from engine.pipeline.step import STEPS, Step, StepContext, register_step

__all__ = [
    "STEPS",
    "BuildStatus",
    "Step",
    "StepContext",
    "check",
    "code_hash",
    "package_versions",
    "plan",
    "rebuild_command",
    "register_step",
    "run_build",
    "ordered_steps",
]
