"""No TFX source package for Beam workers that already import this environment's TFX.

Every TFX Beam component (IdxExampleGen, StatisticsGen, Transform, Evaluator) starts, unless its
Beam args name a dependency flag, by copying TFX's installed source into a temporary folder and
building an sdist of it (`tfx.utils.dependency_utils.make_beam_dependency_flags`), so that remote
workers (Dataflow, a Flink cluster's Docker containers) can install it. Workers that run in this
process (FnApiRunner, DirectRunner) or that were started with this environment (the EXTERNAL
pools of pipeline/portable_beam.py, LOOPBACK, PROCESS) never read that package: building it only
costs each Beam component 2.5-5 s on this machine. `install()` keeps TFX's behaviour for every
other runner and environment.
"""

from typing import List, Sequence

# Runners whose workers are this process.
IN_PROCESS_RUNNERS = ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")
# Portable environments whose workers are started outside Docker, from an environment already set up.
PROVISIONED_ENVIRONMENTS = ("EXTERNAL", "LOOPBACK", "PROCESS")


def workers_have_this_environment(beam_pipeline_args: Sequence[str]) -> bool:
    """True when the Beam workers these args describe import this process's packages."""
    from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions, StandardOptions

    options = PipelineOptions(list(beam_pipeline_args))
    runner = options.view_as(StandardOptions).runner
    if runner is None or runner.split(".")[-1] in IN_PROCESS_RUNNERS:
        return True
    environment = (options.view_as(PortableOptions).environment_type or "").upper()
    return environment in PROVISIONED_ENVIRONMENTS


def install() -> None:
    """From now on in this process, TFX's Beam executors build no TFX sdist for such workers."""
    from tfx.utils import dependency_utils

    tfx_flags = getattr(dependency_utils.make_beam_dependency_flags, "tfx_flags", None)
    if tfx_flags is not None:  # installed already
        return
    tfx_flags = dependency_utils.make_beam_dependency_flags

    def beam_dependency_flags(beam_pipeline_args: List[str]) -> List[str]:
        if workers_have_this_environment(beam_pipeline_args):
            return list(beam_pipeline_args)
        return tfx_flags(beam_pipeline_args)

    beam_dependency_flags.tfx_flags = tfx_flags
    dependency_utils.make_beam_dependency_flags = beam_dependency_flags
