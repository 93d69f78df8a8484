"""robtest.property_table: every entry's function imports, every option is in its signature, the methods and
markers made from it agree with it, its plot exists, and the README has a section for it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from robtest.property_table import COMPARISONS, CONTEXT, KNOBS, PROPERTIES, STOP_KNOBS, VERDICT_KNOBS, marker_errors

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
ENTRIES = list(PROPERTIES.values())


def _params(entry):
    return inspect.signature(entry.load()).parameters


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_function_imports_and_takes_every_option(entry):
    fn = entry.load()
    assert callable(fn) and fn.__module__ == entry.module
    params = _params(entry)
    for k in (*entry.required, *entry.options):
        if k == entry.threshold and k not in params:
            continue  # a threshold the session reads, not the function (lipschitz's max, power_law's exponent)
        assert k in params, f"{entry.name}: {k!r} is not a parameter of {entry.function}"
        assert params[k].kind in (params[k].KEYWORD_ONLY, params[k].POSITIONAL_OR_KEYWORD), (entry.name, k)
        # (a search, fuzzing, has a method of its own: its ``budget`` is a tier name, not the session's Budget)
        assert entry.search or k not in CONTEXT, f"{entry.name}: {k!r} is filled in by the session, not an option"
    own = set(entry.required) | set(entry.options)
    assert not own & {*KNOBS, *VERDICT_KNOBS, *STOP_KNOBS}, entry.name


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_entry_is_consistent(entry):
    assert entry.comparison in COMPARISONS
    assert entry.threshold in (*entry.required, *entry.options)
    if not entry.search:
        assert entry.threshold in entry.required, "a verdict needs its threshold"
    assert len(set(entry.accepted)) == len(entry.accepted)
    params = _params(entry)
    # How it stops early: the function takes the one protocol's sequential and budget, or neither.
    assert bool(entry.stops) == ("sequential" in params and "budget" in params), entry.name
    # An attack's options pass through: the function names the attack and takes **options.
    if entry.passes == "attack":
        assert "attack" in params and any(p.kind is p.VAR_KEYWORD for p in params.values()), entry.name
    if entry.plot is not None:
        from robtest.html_report import PLOTS

        assert entry.plot in PLOTS, entry.name


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.search], ids=lambda e: e.name)
def test_the_method_is_made_from_the_function(entry):
    from robtest.session import RobustSession

    method = getattr(RobustSession, entry.name)
    sig = inspect.signature(method)
    params = _params(entry)
    assert list(sig.parameters)[1:len(entry.required) + 1] == list(entry.required)
    for k in entry.required:
        assert sig.parameters[k].default is inspect.Parameter.empty
    for k in entry.options:  # one default, the function's
        assert sig.parameters[k].default == params[k].default, (entry.name, k)
    for k in (*KNOBS, *VERDICT_KNOBS, *(STOP_KNOBS if entry.stops else ())):
        assert k in sig.parameters, (entry.name, k)
    assert (entry.passes is not None) == any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    assert entry.summary in method.__doc__ and entry.load().__name__ in method.__doc__
    assert ">>>" not in method.__doc__  # the function's examples run in its own module


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_marker_is_checked_against_the_entry(entry):
    given = {k: 1 for k in entry.required}
    assert marker_errors(entry.name, (), given) == []
    assert marker_errors(entry.name, (), {k: 1 for k in entry.accepted}) == []
    assert any("needs" in e for e in marker_errors(entry.name, (), {}))
    unknown = marker_errors(entry.name, (), {**given, "colour": "red"})
    # options the marker does not know are refused here, or pass to the attack / strategy, whose registry checks them
    assert bool(unknown) == (entry.passes is None)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_readme_has_a_section_for_each_property(entry):
    headings = [line for line in README.splitlines() if line.startswith("#")]
    assert any(re.search(rf"`{entry.name}\(", h) for h in headings), f"no README heading names `{entry.name}(...)`"
