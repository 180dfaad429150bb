"""runs.summary on a real ML Metadata store written by hand (no pipeline run): the newest run of the
pipeline, each component's state and time, and what its artifacts say (span, blessing, push)."""

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline import metadata as metadata_lib
from runs import summary

PIPELINE = "mnist_tfx"


class _Store:
    """A sqlite ML Metadata store laid out as TFX's LocalDagRunner records a run."""

    def __init__(self, path: str):
        self.path = path
        self.store = metadata_store.MetadataStore(metadata_lib.sqlite_config(path))
        self.context_types = {
            name: self.store.put_context_type(metadata_store_pb2.ContextType(name=name))
            for name in ("pipeline", "pipeline_run", "node")
        }
        self.execution_type = self.store.put_execution_type(metadata_store_pb2.ExecutionType(name="Component"))
        self.artifact_types = {}
        self.pipeline = self._context("pipeline", PIPELINE)

    def _context(self, kind: str, name: str) -> int:
        [found] = self.store.put_contexts([metadata_store_pb2.Context(type_id=self.context_types[kind], name=name)])
        return found

    def run(self, run_id: str, executions: dict) -> None:
        """executions: {node: (state, {artifact type: {custom property: value}})}."""
        run = self._context("pipeline_run", run_id)
        for node, (state, outputs) in executions.items():
            execution = metadata_store_pb2.Execution(
                type_id=self.execution_type, last_known_state=metadata_store_pb2.Execution.State.Value(state)
            )
            artifacts_and_events = []
            for type_name, properties in outputs.items():
                if type_name not in self.artifact_types:
                    self.artifact_types[type_name] = self.store.put_artifact_type(
                        metadata_store_pb2.ArtifactType(name=type_name)
                    )
                artifact = metadata_store_pb2.Artifact(type_id=self.artifact_types[type_name], uri=f"/x/{node}")
                for key, value in properties.items():
                    field = "int_value" if isinstance(value, int) else "string_value"
                    setattr(artifact.custom_properties[key], field, value)
                event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
                artifacts_and_events.append((artifact, event))
            node_context = metadata_store_pb2.Context(type_id=self.context_types["node"], name=f"{PIPELINE}.{node}")
            existing = self.store.get_context_by_type_and_name("node", f"{PIPELINE}.{node}")
            contexts = [
                self.store.get_contexts_by_id([self.pipeline])[0],
                self.store.get_contexts_by_id([run])[0],
                existing or node_context,
            ]
            self.store.put_execution(execution, artifacts_and_events, contexts, reuse_context_if_already_exist=True)


@pytest.fixture
def store(tmp_path):
    return _Store(str(tmp_path / "metadata.sqlite"))


def test_the_newest_run_is_read_with_its_states_span_blessing_and_push(store):
    store.run("run-1", {"IdxExampleGen": ("COMPLETE", {"Examples": {"span": 1}})})
    store.run(
        "run-2",
        {
            "IdxExampleGen": ("CACHED", {"Examples": {"span": 2}}),
            "Trainer": ("COMPLETE", {"Model": {}}),
            "Evaluator": ("COMPLETE", {"ModelBlessing": {"blessed": 1}}),
            "Pusher": (
                "COMPLETE",
                {"PushedModel": {"pushed": 1, "pushed_destination": "/serving/mnist/7", "pushed_version": "7"}},
            ),
        },
    )
    read = summary.summarize(store.path, PIPELINE)
    assert read["run_id"] == "run-2"
    assert {n: c["state"] for n, c in read["components"].items()} == {
        "IdxExampleGen": "CACHED",
        "Trainer": "COMPLETE",
        "Evaluator": "COMPLETE",
        "Pusher": "COMPLETE",
    }
    assert all(c["wall_seconds"] >= 0 for c in read["components"].values())
    assert read["span"] == 2 and read["blessed"] is True
    assert read["pushed"] is True and read["pushed_model_dir"] == "/serving/mnist/7" and read["pushed_version"] == "7"
    assert read["artifacts"]["Trainer.Model"] == "/x/Trainer"


def test_a_run_that_was_not_blessed_pushes_nothing(store):
    store.run(
        "run-1",
        {
            "Evaluator": ("COMPLETE", {"ModelBlessing": {"blessed": 0}}),
            "Pusher": ("COMPLETE", {"PushedModel": {"pushed": 0}}),
        },
    )
    read = summary.summarize(store.path, PIPELINE)
    assert read["blessed"] is False and read["pushed"] is False
    assert read["pushed_model_dir"] is None and read["pushed_version"] is None


def test_a_store_without_the_pipeline_or_its_runs_says_so(store, tmp_path):
    with pytest.raises(LookupError, match="no pipeline 'other'"):
        summary.summarize(store.path, "other")
    with pytest.raises(LookupError, match="has no runs yet"):
        summary.summarize(store.path, PIPELINE)
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        summary.read_only_store(str(tmp_path / "missing.sqlite"))
