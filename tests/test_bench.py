"""Benchmarks of the training step: the arithmetic comparison across hosts (`jand.bench`)."""
from jand.bench import WITHOUT_BF16_UNITS, host_trace


def test_fp32_training_is_the_same_bits_with_and_without_bf16_units():
    here, there = host_trace("fp32", 4), host_trace("fp32", 4, WITHOUT_BF16_UNITS)
    assert here["corpus"] == there["corpus"]
    assert here["losses"] == there["losses"]  # bit for bit: a float32 table does not depend on the host's bf16 units
    assert there["host"]["env"] == WITHOUT_BF16_UNITS  # the traced process did run with oneDNN capped
