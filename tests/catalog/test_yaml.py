import pytest

from parasearch.catalog import _yaml
from parasearch.errors import SpecError


def test_lines_of_nested_keys():
    doc = _yaml.loads("a: 1\nb:\n  c: 2\n  d:\n    - 3\n    - 4\n", "f.yaml")
    assert doc.line_of(("b", "c")) == 3
    assert doc.line_of(("b", "d", 1)) == 6
    assert doc.line_of(("b", "missing")) == 2


@pytest.mark.parametrize("text,line", [("a: 1\na: 2\n", 2), ("a: [1, 2\nb: 3\n", 2), ("a:\n\t- b\n", 2)])
def test_syntax_errors_have_lines(text, line):
    with pytest.raises(SpecError) as e:
        _yaml.loads(text, "f.yaml")
    assert e.value.line == line


def test_binary_and_huge_inputs_are_refused(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\x00\x01\xff")
    with pytest.raises(SpecError, match="not a text file"):
        _yaml.load(p)
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 2_000_000)
    with pytest.raises(SpecError, match="too large"):
        _yaml.load(big)
    with pytest.raises(SpecError, match="no such file"):
        _yaml.load(tmp_path / "nope.yaml")
