"""The models shipped in `models/`: each card's numbers are its model's (read again on the card's sample lines)."""
import pytest

from jand.modeldir import card_checks, model_rows, shipped_models

SHIPPED = shipped_models()


@pytest.mark.skipif(not SHIPPED, reason="no shipped models yet: `jand reproduce --only models` writes them")
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_card_matches_its_model(name):
    checks = card_checks(SHIPPED[name])
    assert checks, f"{name}'s card carries no sample check"
    for data, on_card, again in checks:
        assert on_card == again, f"{name} on {data}: the card says {on_card} % CER, the model reads {again} %"


@pytest.mark.skipif(not SHIPPED, reason="no shipped models yet")
def test_shipped_models_are_listed_with_their_metrics():
    rows = model_rows()
    assert [r["model"] for r in rows] == list(SHIPPED)
    assert all("CER" in r["metrics"] and r["MB"] < 20 for r in rows)  # small enough for the repository
