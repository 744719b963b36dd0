import pytest

from parasearch.catalog import _yaml
from parasearch.catalog.hardware import _catalog_root, catalog_names, load_hardware
from parasearch.errors import ParasearchError, SpecError

REQUIRED = {"h100-sxm", "h200", "a100-sxm-80gb", "b200", "gb200", "mi300x", "mi325x", "l40s"}


def test_catalog_has_every_required_gpu():
    assert REQUIRED <= set(catalog_names())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_gpu_loads_with_sane_numbers(name):
    hw = load_hardware(name)
    assert 40e9 <= hw.hbm_bytes <= 300e9
    assert 0.5e12 <= hw.hbm_bytes_per_s <= 10e12
    assert hw.peak_flops("fp8") >= hw.peak_flops("bf16") > 1e14
    assert 0 < hw.efficiency.gemm_bw <= 1.2 and 0 < hw.efficiency.gemm_flops <= 1


def test_every_number_in_hardware_files_has_a_provenance_comment():
    """Spec numbers carry a comment; the fitted/default efficiency block carries its `source`."""
    root = _catalog_root()
    for f in root.iterdir():
        if not f.name.endswith(".yaml"):
            continue
        text = f.read_text()
        spec, _, eff = text.partition("\nefficiency:")
        for i, line in enumerate(spec.splitlines(), 1):
            key, _, value = line.split("#")[0].partition(":")
            if key.strip() in ("name", "display_name", "vendor"):
                continue
            if any(ch.isdigit() for ch in value):
                assert "#" in line, f"{f.name}:{i} has a number without a source"
        assert "source:" in eff and ("fitted" in eff or "DEFAULT" in eff), f"{f.name}: efficiency without a source"


def test_gpu_without_fp8_falls_back_to_bf16_compute():
    a100 = load_hardware("a100-sxm-80gb")
    assert a100.peak_flops("fp8") == a100.peak_flops("bf16")


def test_yaml_reads_exponent_floats_without_a_dot():
    doc = _yaml.loads("a: 3.35e12\nb: 1e9\nc: 2.0e-6\nd: '3e5'\n")
    assert doc.data == {"a": 3.35e12, "b": 1e9, "c": 2.0e-6, "d": "3e5"}


def test_hardware_file_errors_name_file_line_and_field(tmp_path):
    text = (_catalog_root() / "h100-sxm.yaml").read_text()
    lines = text.splitlines()
    n = next(i for i, line in enumerate(lines) if line.strip().startswith("hbm_bytes:"))
    lines[n] = "  hbm_bytes: -5"
    p = tmp_path / "gpu.yaml"
    p.write_text("\n".join(lines))
    with pytest.raises(SpecError) as e:
        load_hardware(str(p))
    assert e.value.one_line().startswith(f"{p}:{n + 1}: memory.hbm_bytes: must be a positive number")


def test_unknown_hardware():
    with pytest.raises(ParasearchError) as e:
        load_hardware("h1000")
    assert "h100-sxm" in e.value.one_line()
