import json
import math

import numpy as np
import pytest

from parasearch.errors import SpecError
from parasearch.traffic import trace as T
from parasearch.traffic.stats import gamma_fit, summarize
from tests.conftest import ROOT

AZURE = ROOT / "data" / "traces" / "azure-llm-conv-2023-sample.csv"


def test_the_shipped_azure_sample_reads_with_its_rate_and_burstiness():
    tr = T.read_trace(AZURE)
    assert tr.format == "azure" and len(tr) == 3002 and tr.dropped == 0
    assert tr.arrival_s[0] == 0 and np.all(np.diff(tr.arrival_s) >= 0)
    # 3,002 requests between 18:15:46.68 and 18:26:16.33 (629.65 s).
    assert tr.duration_s == pytest.approx(629.654, abs=1e-3)
    assert tr.mean_rate == pytest.approx(3001 / 629.654, rel=1e-6)
    assert (tr.input_tokens[0], tr.output_tokens[0]) == (374, 44)
    s = summarize(tr)
    assert 1.0 < s["interarrival"]["cv"] < 1.2 and s["input_tokens"]["p50"] == 1041.5


def test_burstgpt_rows_are_sorted_and_failed_requests_dropped(tmp_path):
    f = tmp_path / "b.csv"
    f.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                 "5,ChatGPT,472,18,490,Conversation log\n"
                 "3,GPT-4,100,0,100,Conversation log\n"          # failed: no response
                 "1,GPT-4,417,276,693,API log\n"
                 "45,ChatGPT,1087,230,1317,Conversation log\n")
    tr = T.read_trace(f)
    assert tr.format == "burstgpt" and len(tr) == 3 and tr.dropped == 1
    assert list(tr.arrival_s) == [0.0, 4.0, 44.0] and list(tr.input_tokens) == [417, 472, 1087]


def test_vllm_timed_trace_jsonl_in_milliseconds(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps({"timestamp": ms, "input_length": i, "output_length": o, "hash_ids": [1, 2]})
                           for ms, i, o in ((0, 100, 10), (500, 200, 20), (2000, 300, 30))) + "\n")
    tr = T.read_trace(f, time_scale=0.001)
    assert tr.format == "vllm-jsonl" and list(tr.arrival_s) == [0.0, 0.5, 2.0] and tr.mean_rate == 1.0
    assert T.read_trace(f).duration_s == 2000.0     # vLLM's default multiplier: seconds


@pytest.mark.parametrize("text, line, words", [
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.00,abc,9\n",
     3, "not a number"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.00,-5,9\n",
     3, "whole number"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\nnot a date,5,9\n", 3, "timestamp"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47.00,5\n",
     3, "columns"),
    ("a,b,c\n1,2,3\n", 1, "unknown trace columns"),
    ('{"timestamp": 0, "input_length": 5, "output_length": 5}\n{"prompt": "hi"}\n', 2, "custom"),
    ('{"timestamp": 0, "input_length": 5, "output_length": 5}\n{"timestamp": 1, "input_length": 5\n', 2, "JSON"),
])
def test_a_bad_row_is_one_line_with_file_and_line(tmp_path, text, line, words):
    f = tmp_path / ("t.jsonl" if text.startswith("{") else "t.csv")
    f.write_text(text)
    with pytest.raises(SpecError) as e:
        T.read_trace(f)
    msg = e.value.one_line()
    assert f"{f}:{line}:" in msg and words in msg and "\n" not in msg


def test_reading_is_bounded(tmp_path, monkeypatch):
    with pytest.raises(SpecError, match="not a regular file"):
        T.read_trace(tmp_path)
    with pytest.raises(SpecError, match="no such file"):
        T.read_trace(tmp_path / "missing.csv")
    big = tmp_path / "big.csv"
    big.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "2023-11-16 18:15:46.68,374,44\n" * 50)
    monkeypatch.setattr(T, "MAX_TRACE_BYTES", 100)
    with pytest.raises(SpecError, match="too large"):
        T.read_trace(big)
    monkeypatch.setattr(T, "MAX_TRACE_BYTES", 10**9)
    monkeypatch.setattr(T, "MAX_TRACE_ROWS", 10)
    with pytest.raises(SpecError, match="more than 10 requests"):
        T.read_trace(big)


def test_byte_order_mark_and_offsets_are_understood(tmp_path):
    f = tmp_path / "bom.csv"
    f.write_text("\ufeffTIMESTAMP,ContextTokens,GeneratedTokens\n2024-05-10 00:00:00.000000+00:00,10,5\n"
                 "2024-05-10 01:00:00.500000+01:00,10,5\n", encoding="utf-8")
    tr = T.read_trace(f)
    assert tr.duration_s == pytest.approx(0.5)     # one hour later on the clock, one hour east


def test_gamma_fit_recovers_the_shape_of_gamma_gaps():
    rng = np.random.default_rng(0)
    for cv in (0.5, 1.0, 2.0):
        k = 1 / cv ** 2
        gaps = rng.gamma(k, 1 / k, 20_000)
        shape, scale, method = gamma_fit(gaps)
        assert method == "maximum likelihood" and shape == pytest.approx(k, rel=0.05)
        assert shape * scale == pytest.approx(np.mean(gaps), rel=1e-6)
    # Whole-second timestamps give zero gaps: the likelihood is degenerate, moments are used.
    shape, _, method = gamma_fit(np.array([0.0, 1.0, 2.0, 0.0, 1.0] * 10))
    assert method == "moments" and math.isfinite(shape)
