"""``judge-server eval``'s arithmetic, at the seam (the real run is an integration test)."""

from judge_server.cli.evaluation.run import valid_mass_stats, valid_masses
from judge_server.service import ItemResult


def test_valid_masses_come_from_the_verdict_or_its_criteria() -> None:
    assert valid_masses({"valid_mass": 0.4, "p_yes": 0.9}) == [0.4]
    rubric = {"criteria": [{"id": "a", "valid_mass": 0.2}, {"id": "b", "valid_mass": 0.7}]}
    assert valid_masses(rubric) == [0.2, 0.7]
    assert valid_masses({"method": "numeric"}) == []  # decided without the judge


def test_valid_mass_stats_over_ok_results_only() -> None:
    results = [ItemResult(str(k), "ok", 0.5, {"valid_mass": k / 100}) for k in range(1, 101)]
    results.append(ItemResult("x", "judge_error", None, {"valid_mass": 0.0}))
    stats = valid_mass_stats(results)
    assert stats["valid_mass_min"] == 0.01
    assert stats["valid_mass_p01"] == 0.02
    assert stats["valid_mass_p05"] == 0.06
    assert stats["valid_mass_median"] == 0.51
    assert valid_mass_stats([ItemResult("y", "ok", 1.0, {"method": "numeric"})]) == {}
