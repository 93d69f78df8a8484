"""accuracy_floor(attack="transfer", surrogate="<fixture name>"): the plugin resolves the surrogate fixture."""

from __future__ import annotations

import pytest


def test_marker_names_the_surrogate_fixture(project: pytest.Pytester):
    project.makepyfile(
        """
        import pytest, torch

        @pytest.fixture(scope="session")
        def anti(robust_model):
            m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
            with torch.no_grad():
                m[1].weight.copy_(-robust_model[1].weight)   # its attacks only help the model
                m[1].bias.zero_()
            return m.eval()

        @pytest.mark.accuracy_floor(attack="transfer", surrogate="anti", surrogate_attack="fgsm", eps=0.3,
                                    floor=0.99)
        def test_transfer_from_anti():
            pass

        @pytest.mark.accuracy_floor(attack="transfer", surrogate="robust_model", eps=0.3, floor=0.99, steps=5)
        def test_transfer_from_itself():
            pass

        @pytest.mark.accuracy_floor(attack="transfer", eps=0.3, floor=0.5)
        def test_no_surrogate():
            pass

        @pytest.mark.accuracy_floor(attack="transfer", surrogate="missing_fixture", eps=0.3, floor=0.5)
        def test_unknown_fixture():
            pass

        def test_by_hand(robust, anti):
            v = robust.accuracy_floor(attack="transfer", surrogate=anti, surrogate_attack="fgsm", eps=0.3, floor=0.99)
            assert v.passed
        """
    )
    result = project.runpytest("--robust", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*fixture 'missing_fixture' not found*",
        "*under transfer of PGD from a surrogate L∞ ε=0.3, 5 steps, is below the floor 0.99*",
        "*surrogate: the transfer attack needs the model to craft the examples on*",
    ])
