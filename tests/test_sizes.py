"""Token counts, byte sizes and the memory-budget checks."""
import pytest

from edgebench.execution.budget import apply_budget, check_budget, device_overrun
from edgebench.errors import UserError
from edgebench.sweep.units import format_bytes, parse_count, parse_size


@pytest.mark.parametrize("text, tokens", [
    ("32k", 32768), ("64K", 65536), ("4096", 4096), (" 512 ", 512), ("1.5k", 1536), ("1m", 2**20),
    ("0", 0), (128, 128), ("0.5k", 512),
])
def test_parse_count(text, tokens):
    assert parse_count(text) == tokens


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.3k", "4g", "k", "1e3", -5, True])
def test_parse_count_rejects(text):
    with pytest.raises(UserError, match="token count|expected a token count"):
        parse_count(text)


@pytest.mark.parametrize("text, size_bytes", [
    ("24GiB", 24 * 2**30), ("8GB", 8 * 10**9), ("512MiB", 512 * 2**20), ("1.5GiB", 3 * 2**29),
    ("24gib", 24 * 2**30), ("100", 100), ("100B", 100), ("2 TiB", 2 * 2**40), (4096, 4096),
])
def test_parse_size(text, size_bytes):
    assert parse_size(text) == size_bytes


@pytest.mark.parametrize("text", ["12XB", "", "-1GiB", "0GiB", "GiB", 0, -3])
def test_parse_size_rejects_naming_units(text):
    with pytest.raises(UserError, match="GiB"):
        parse_size(text)


def test_parse_size_ambiguous_unit_suggests_both():
    with pytest.raises(UserError, match=r"24GiB .* or 24GB"):
        parse_size("24G")


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (512, "512 B"), (1536, "1.50 KiB"), (1.4 * 2**30, "1.40 GiB"), (80 * 2**30, "80.0 GiB"),
    (300 * 2**20, "300 MiB"),
])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_check_budget_messages():
    check_budget(24 * 2**30, 80 * 2**30, int(1.4 * 2**30))
    check_budget(None, 80 * 2**30, 10**9)
    with pytest.raises(UserError, match="budget 200 GiB exceeds the device's 80.0 GiB"):
        check_budget(200 * 2**30, 80 * 2**30, 10**9)
    with pytest.raises(UserError, match="budget 1.00 GiB is below the model's 1.40 GiB of weights"):
        check_budget(2**30, 80 * 2**30, int(1.4 * 2**30))


def test_device_overrun():
    assert device_overrun(8 * 2**30, 7 * 2**30) is None
    assert device_overrun(None, 7 * 2**30) is None
    assert "exceeded the memory budget 8.00 GiB" in device_overrun(8 * 2**30, 9 * 2**30)


class _FakeCuda:
    def __init__(self, total_bytes):
        self.total_bytes, self.calls = total_bytes, []

    def is_available(self):
        return True

    def device_count(self):
        return 1

    def get_device_properties(self, index):
        return type("Props", (), {"total_memory": self.total_bytes})()

    def set_per_process_memory_fraction(self, fraction, device):
        self.calls.append((fraction, device))


def test_apply_budget_sets_fraction(monkeypatch):
    torch = pytest.importorskip("torch")
    fake = _FakeCuda(80 * 2**30)
    monkeypatch.setattr(torch, "cuda", fake)
    assert apply_budget(20 * 2**30, 0) == pytest.approx(0.25)
    assert fake.calls == [(pytest.approx(0.25), 0)]
    with pytest.raises(UserError, match="exceeds the device"):
        apply_budget(100 * 2**30, 0)
    with pytest.raises(UserError, match="device 3 does not exist"):
        apply_budget(2**30, 3)


def test_apply_budget_without_cuda(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="needs a CUDA device"):
        apply_budget(2**30, 0)
