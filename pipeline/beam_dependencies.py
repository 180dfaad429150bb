"""No TFX source package for Beam workers that already import this environment's TFX.

Every TFX Beam component (IdxExampleGen, StatisticsGen, Transform, Evaluator) starts, unless its
Beam args name a dependency flag, by copying TFX's installed source into a temporary folder and
building an sdist of it (`tfx.utils.dependency_utils.make_beam_dependency_flags`), so that remote
workers (Dataflow, a Flink cluster's Docker containers) can install it. Workers that run in this
process (FnApiRunner, DirectRunner) or that were started from an environment already set up (the
EXTERNAL pools of pipeline/portable_beam.py, LOOPBACK, PROCESS) never read that package: building
it only costs each Beam component 2.5-5 s on this machine. `install()` keeps TFX's behaviour for
Docker workers, Dataflow and every other runner.
"""

from typing import List, Optional, Sequence

# Runners that run their workers in this process (or, multi_processing, in subprocesses of this
# interpreter) whatever --environment_type says.
IN_PROCESS_RUNNERS = frozenset({"fnapirunner", "bundlebaseddirectrunner"})
# The direct runners: Beam's DirectRunner hands a job to Prism (LOOPBACK workers, in this process)
# or to FnApiRunner, unless --environment_type names other workers.
DIRECT_RUNNERS = frozenset({"directrunner", "switchingdirectrunner", "testdirectrunner", "prismrunner"})
# Portable runners: their workers are Docker containers unless --environment_type says otherwise.
PORTABLE_RUNNERS = frozenset({"portablerunner", "flinkrunner", "sparkrunner"})
# Environments whose workers are started outside Docker, from an environment already set up: on a
# cluster, the project's image, which has to hold the project's own code (IdxExampleGen) anyway.
PROVISIONED_ENVIRONMENTS = frozenset({"EXTERNAL", "LOOPBACK", "PROCESS"})


def runner_name(runner: Optional[str]) -> str:
    """The runner as Beam resolves its name: `direct`, `DirectRunner` and
    `apache_beam.runners.direct.DirectRunner` are all `directrunner`; none given is DirectRunner."""
    name = (runner or "DirectRunner").split(".")[-1].lower()
    return name if name.endswith("runner") else name + "runner"


def workers_have_this_environment(beam_pipeline_args: Sequence[str]) -> bool:
    """True when the Beam workers these args describe import this process's packages. Dataflow and
    every runner not named above: False, so TFX packs itself for them as it always does."""
    from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions

    options = PipelineOptions(list(beam_pipeline_args))
    runner = runner_name(options.view_as(StandardOptions).runner)
    environment = (options.view_as(PortableOptions).environment_type or "").upper()
    if runner in IN_PROCESS_RUNNERS:
        return True
    if runner in DIRECT_RUNNERS:
        return environment == "" or environment in PROVISIONED_ENVIRONMENTS
    if runner in PORTABLE_RUNNERS:
        return environment in PROVISIONED_ENVIRONMENTS
    return False


def install() -> None:
    """From now on in this process, TFX's Beam executors build no TFX sdist for such workers."""
    from tfx.utils import dependency_utils

    if hasattr(dependency_utils.make_beam_dependency_flags, "tfx_flags"):  # installed already
        return
    tfx_flags = dependency_utils.make_beam_dependency_flags

    def beam_dependency_flags(beam_pipeline_args: List[str]) -> List[str]:
        if workers_have_this_environment(beam_pipeline_args):
            return list(beam_pipeline_args)
        return tfx_flags(beam_pipeline_args)

    beam_dependency_flags.tfx_flags = tfx_flags
    dependency_utils.make_beam_dependency_flags = beam_dependency_flags
