"""benchmarks/adversarial.py: the table of each model on the same digits, with its training record."""

import json

from benchmarks import adversarial


def test_each_model_gets_its_table_and_training_time(exported_model, tmp_path):
    path = tmp_path / "a.json"
    assert (
        adversarial.main(
            [
                "--models",
                exported_model,
                "--examples",
                "30",
                "--steps",
                "3",
                "--cross-check",
                "10",
                "--output",
                str(path),
            ]
        )
        == 0
    )
    result = json.loads(path.read_text())
    table = result["models"][exported_model]
    assert result["examples"] == table["examples"] == 30 and result["pgd_attack"].startswith("3 steps")
    assert set(table["pgd"]) == {"0.05", "0.1", "0.2", "0.3"} and table["cross_check"]["examples"] == 10
    assert table["pgd"]["0.3"] <= table["fgsm"]["0.3"] <= table["clean_accuracy"]
    assert table["attack_seconds"] > 0 and "trainer_fit_seconds" in table
