"""TFX's Beam executors build their TFX sdist only for workers that do not share this environment."""

import pytest
from tfx.components.statistics_gen import executor as statistics_gen
from tfx.dsl.components.base import base_beam_executor
from tfx.utils import dependency_utils

from pipeline import beam_dependencies, configs, portable_beam

SDIST = "/tmp/tfx_ephemeral.tar.gz"


@pytest.fixture
def sdist_builds(monkeypatch):
    """Installs the rule in this process (TFX's own function is put back after the test); the list
    of the sdists TFX would have built."""
    built = []
    tfx_flags = dependency_utils.make_beam_dependency_flags
    monkeypatch.setattr(dependency_utils, "make_beam_dependency_flags", tfx_flags)
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", lambda: built.append(SDIST) or SDIST)
    beam_dependencies.install()
    beam_dependencies.install()  # a second call changes nothing: TFX's function is wrapped once
    assert dependency_utils.make_beam_dependency_flags.tfx_flags is tfx_flags
    return built


def _executor_args(beam_args):
    """The Beam args StatisticsGen's executor ends up with."""
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(beam_args))
    return statistics_gen.Executor(context)._beam_pipeline_args


@pytest.mark.parametrize(
    "beam_args",
    [
        configs.BEAM_PIPELINE_ARGS,
        ["--runner=DirectRunner"],
        portable_beam.Services("127.0.0.1:1", ["127.0.0.1:2"], {}).pipeline_args(),
        ["--runner=PortableRunner", "--job_endpoint=127.0.0.1:1", "--environment_type=LOOPBACK"],
        ["--runner=direct"],
        ["--runner=apache_beam.runners.direct.DirectRunner", "--direct_running_mode=multi_processing"],
        ["--direct_num_workers=1"],  # no runner: Beam's default, DirectRunner
    ],
    ids=["project_default", "direct", "portable_external_pools", "portable_loopback", "short_name", "dotted", "none"],
)
def test_workers_on_this_environment_get_no_sdist(sdist_builds, beam_args):
    args = _executor_args(beam_args)
    assert sdist_builds == [] and not any(a.startswith("--extra_package") for a in args)
    assert args[: len(beam_args)] == list(beam_args)


@pytest.mark.parametrize(
    "beam_args",
    [
        ["--runner=DataflowRunner", "--project=p", "--region=r"],
        ["--runner=PortableRunner", "--job_endpoint=127.0.0.1:1"],  # Docker workers, the portable default
        ["--runner=FlinkRunner", "--environment_type=DOCKER"],
        ["--runner=DirectRunner", "--environment_type=DOCKER"],  # Prism starts Docker workers
        ["--runner=DataflowRunner", "--environment_type=EXTERNAL"],  # Dataflow ignores the type
    ],
    ids=["dataflow", "portable_docker", "flink_docker", "direct_docker", "dataflow_external"],
)
def test_remote_workers_still_get_tfx_as_a_package(sdist_builds, beam_args):
    args = _executor_args(beam_args)
    assert sdist_builds == [SDIST] and f"--extra_package={SDIST}" in args


def test_a_dependency_flag_of_the_users_own_is_kept(sdist_builds):
    args = _executor_args(["--runner=DataflowRunner", "--setup_file=./setup.py"])
    assert sdist_builds == [] and "--setup_file=./setup.py" in args
