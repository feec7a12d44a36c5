"""Third-party internals: every private name the code touches is in a checked table, and a change fails loudly."""

from __future__ import annotations

import ast

import pytest

from bertvariants import internals
from bertvariants.internals import Internal

from .conftest import REPO


@pytest.mark.parametrize("package", sorted(internals.TABLES))
def test_the_installed_versions_have_every_internal(package):
    assert internals.problems(internals.TABLES[package]) == []
    internals.require(package)


def test_a_changed_signature_is_named_with_what_uses_it():
    table = (
        Internal("accelerate.state.AcceleratorState", "_reset_state", ("renamed_flag",), "the test's reason"),
        Internal("transformers.masking_utils", "no_such_function", ("x",), "another reason"),
        Internal("transformers.PretrainedConfig", "_no_such_field", None, "a config field"),
    )
    found = internals.problems(table)
    assert len(found) == 3
    assert "AcceleratorState._reset_state should take (renamed_flag) but takes (reset_partial_state)" in found[0]
    assert "the test's reason" in found[0]
    assert "no_such_function is missing" in found[1] and "_no_such_field is missing" in found[2]


def test_require_raises_with_the_version(monkeypatch):
    bad = (Internal("torch.Tensor", "_no_such_counter", None, "a reason"),)
    monkeypatch.setitem(internals.TABLES, "torch-test", bad)
    monkeypatch.setattr(internals, "version", lambda package: "9.9")
    with pytest.raises(RuntimeError, match=r"torch-test 9\.9 that changed:\n- torch\.Tensor\._no_such_counter"):
        internals.require.__wrapped__("torch-test")


def private_attributes() -> set[str]:
    """``x._name`` read anywhere in the library (not on self / cls, not our own ``_bertvariants_*`` markers)."""
    found = set()
    for path in [*REPO.joinpath("bertvariants").rglob("*.py"), *REPO.joinpath("evaluation").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not node.attr.startswith("_bertvariants")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.add(node.attr)
    return found


# the standard library's documented API (namedtuple._replace)
OWN_OR_STDLIB = {"_replace"}


def test_every_third_party_private_name_is_in_a_table():
    tabled = {item.name for table in internals.TABLES.values() for item in table}
    unlisted = private_attributes() - tabled - OWN_OR_STDLIB
    assert not unlisted, (f"private names read without a row in bertvariants/internals.py: {sorted(unlisted)} — "
                          "use a public API, or add the internal to a table and require() it before use")
