"""Tests of jaxrank.io.read_svmlight (LETOR/SVMlight and LightGBM group-file layouts)."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import numpy as np
import pytest

from jaxrank.io import RankingData, SvmlightFormatError, read_svmlight


def _reference_parse(path: Path, group_sizes=None):
    """Independent line-by-line parser with TF-Ranking's rule (a dict per line, updated
    token by token, so the last value of a repeated index wins); 1-based indices."""
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        toks = line.split()
        label = float(toks[0])
        qid = None
        if toks[1].startswith("qid:"):
            qid, toks = toks[1][4:], toks[2:]
        else:
            toks = toks[1:]
        feats = {}
        for t in toks:
            k, v = t.split(":")
            feats[int(k)] = float(v)
        rows.append((qid, label, feats))
    if group_sizes is not None:
        qids = np.repeat(np.arange(len(group_sizes)), group_sizes).astype(str)
        rows = [(q, lab, f) for q, (_, lab, f) in zip(qids, rows, strict=True)]
    groups: dict[str, list] = {}
    for qid, label, feats in rows:
        groups.setdefault(qid, []).append((label, feats))
    return groups


def _assert_matches_reference(data: RankingData, groups: dict) -> None:
    assert data.query_ids.tolist() == list(groups)
    for q, (qid, docs) in enumerate(groups.items()):
        assert qid == data.query_ids[q]
        assert data.where[q].sum() == len(docs)
        assert not data.where[q, len(docs) :].any()
        for d, (label, feats) in enumerate(docs):
            assert data.labels[q, d] == np.float32(label)
            dense = np.zeros(data.num_features, np.float32)
            for k, v in feats.items():
                dense[k - 1] = v
            np.testing.assert_array_equal(data.features[q, d], dense)
    # Padding is zero everywhere.
    assert not data.features[~data.where].any()
    assert not data.labels[~data.where].any()


@pytest.mark.parametrize("name", ["train.txt", "vali.txt", "test.txt"])
def test_tfranking_sample_matches_reference_parser(shared_data, name):
    path = shared_data / "tfranking_libsvm_sample" / name
    data = read_svmlight(path)
    _assert_matches_reference(data, _reference_parse(path))
    assert data.features.dtype == np.float32 and data.where.dtype == bool


def test_tfranking_sample_counts_and_repeated_index(shared_data):
    path = shared_data / "tfranking_libsvm_sample" / "train.txt"
    data = read_svmlight(path)
    # SOURCE.md: train 119 rows / 27 qids, feature ids up to 136.
    assert int(data.where.sum()) == 119 and data.num_queries == 27
    assert data.num_features == 136
    # Line 1 of train.txt (read by hand): "0 qid:1 115:-0.617277 5:-0.109573
    # 17:-0.763873 17:0.369905 ..." -> the last value of index 17 wins.
    assert data.features[0, 0, 16] == np.float32(0.369905)
    assert data.features[0, 0, 114] == np.float32(-0.617277)
    assert data.lines[0, 0] == 1
    # SOURCE.md: 82 of the 119 train rows repeat an index.
    text = path.read_text().splitlines()
    repeated = sum(
        len(set(re.findall(r" (\d+):", ln))) < len(re.findall(r" (\d+):", ln)) for ln in text
    )
    assert repeated == 82


@pytest.mark.parametrize(
    ("name", "rows", "queries", "smallest", "largest", "label_counts"),
    [
        # SOURCE.md of lightgbm_lambdarank: rows, queries, group sizes, label histogram.
        ("rank.train", 3005, 201, 1, 27, [645, 1211, 858, 222, 69]),
        ("rank.test", 768, 50, 6, 24, [206, 256, 252, 44, 10]),
    ],
)
def test_lightgbm_group_file(shared_data, name, rows, queries, smallest, largest, label_counts):
    path = shared_data / "lightgbm_lambdarank" / name
    data = read_svmlight(path, num_features=300)  # group file <path>.query found
    assert int(data.where.sum()) == rows and data.num_queries == queries
    assert data.sizes.min() == smallest and data.sizes.max() == largest
    assert data.features.shape == (queries, largest, 300)
    hist = np.bincount(data.labels[data.where].astype(int), minlength=5)
    assert hist.tolist() == label_counts
    explicit = read_svmlight(path, query_path=str(path) + ".query", num_features=300)
    np.testing.assert_array_equal(explicit.features, data.features)
    sizes = [int(s) for s in Path(str(path) + ".query").read_text().split()]
    _assert_matches_reference(data, _reference_parse(path, sizes))


def test_lightgbm_parse_is_fast(shared_data):
    path = shared_data / "lightgbm_lambdarank" / "rank.train"
    read_svmlight(path)
    start = time.perf_counter()
    read_svmlight(path)
    # Measured 0.1-0.4 s on a loaded 2-core machine; a per-token Python parser with
    # dense assignment takes several times longer. Generous bound for shared CI.
    assert time.perf_counter() - start < 3.0


def _write(tmp_path, text, name="data.txt", gz=False):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_rules_by_hand(tmp_path):
    path = _write(
        tmp_path,
        "# header comment\n"
        "2 qid:b 3:1.5 1:-2 # doc x\n"
        "\n"
        "0 qid:a 2:7 2:8 2:9\n"
        "1 qid:b\n",  # a document without features
    )
    data = read_svmlight(path)
    # Queries in order of first appearance; qid b's lines (2 and 5) are gathered.
    assert data.query_ids.tolist() == ["b", "a"]
    assert data.features.shape == (2, 2, 3)
    np.testing.assert_array_equal(data.features[0], [[-2, 0, 1.5], [0, 0, 0]])
    np.testing.assert_array_equal(data.features[1, 0], [0, 9, 0])  # last of 7, 8, 9
    np.testing.assert_array_equal(data.labels, [[2, 1], [0, 0]])
    np.testing.assert_array_equal(data.where, [[True, True], [True, False]])
    np.testing.assert_array_equal(data.lines, [[2, 5], [4, 0]])


def test_options(tmp_path):
    path = _write(tmp_path, "1 qid:1 0:5 2:1\n0 qid:1 1:3\n", gz=True)
    data = read_svmlight(path, zero_based=True, num_features=6, list_size=4)
    assert data.features.shape == (1, 4, 6)
    np.testing.assert_array_equal(data.features[0, :2, :3], [[5, 0, 1], [0, 3, 0]])
    assert data.where[0].tolist() == [True, True, False, False]


def test_group_file_explicit_and_default(tmp_path):
    path = _write(tmp_path, "1 1:1\n0 2:1\n3 1:4\n")
    groups = _write(tmp_path, "2\n1\n", name="groups.txt")
    data = read_svmlight(path, query_path=groups)
    assert data.query_ids.tolist() == ["0", "1"]
    np.testing.assert_array_equal(data.labels, [[1, 0], [3, 0]])
    _write(tmp_path, "1\n2\n", name="data.txt.query")
    np.testing.assert_array_equal(read_svmlight(path).sizes, [1, 2])


def _raises(path, match, **kwargs):
    with pytest.raises((SvmlightFormatError, ValueError), match=match):
        read_svmlight(path, **kwargs)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 qid:1 1:2\nx qid:1 1:2\n", r"data\.txt:2: label is not a number: 'x'"),
        ("1 qid:1 1:2\n1 qid:1 1:2 3\n", r"data\.txt:2: expected idx:value.*'3'"),
        ("1 qid:1 1:2 a:3\n", r"data\.txt:1: expected idx:value.*'a:3'"),
        ("1 qid:1 1:2 2:abc\n", r"data\.txt:1: expected idx:value.*'2:abc'"),
        ("1 qid:1 1:2 2:3:4\n", r"data\.txt:1: expected idx:value.*'2:3:4'"),
        ("1 qid:1 1:2 -2:3\n", r"data\.txt:1: feature index -2 is below 1"),
        ("1 qid:1 1:nan\n", r"data\.txt:1: feature value is not finite"),
        ("inf qid:1 1:1\n", r"data\.txt:1: label is not finite"),
        ("1 qid:1 1:2\n\n1 qid:2 0:2\n", r"data\.txt:3: feature index 0 is below 1"),
        ("1 qid:1 1:2\n1 2:2\n", r"data\.txt:2: qid: missing"),
        ("1 1:2 qid:3\n", r"data\.txt:1: qid: must come right after the label"),
        ("# only a comment\n\n", r"data\.txt: no data lines"),
        ("1 qid: 1:1\n", r"data\.txt:1: empty qid"),
        ("1 qid:1 1:1\n0 qid:1 99999999999999999999:1\n", r"data\.txt:2: expected idx:value"),
        ("1 qid:1 1:2\n1 qid:1 1:2\n1 2:2\n", r"data\.txt:3: qid: missing while line 1 has"),
        ("1 1:2\n1 qid:4 2:2\n", r"data\.txt:2: qid: present while line 1 lacks"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, match):
    _raises(_write(tmp_path, text), match)


def test_argument_errors(tmp_path):
    path = _write(tmp_path, "1 qid:1 1:2 5:1\n0 qid:1 1:1\n")
    _raises(path, r"data\.txt:1: feature index 5 exceeds num_features=4", num_features=4)
    _raises(path, r"query 1 has 2 documents, more than list_size=1", list_size=1)
    _raises(path, r"query_path=.*was given too", query_path=path)
    huge = _write(tmp_path, "1 qid:1 4000000000:1\n0 qid:1 1:1\n", name="huge.txt")
    _raises(huge, r"huge\.txt: padded features \[1, 2, 4000000000\] would take 29\.8 GiB")
    with pytest.raises(FileNotFoundError, match="nope"):
        read_svmlight(tmp_path / "nope.txt")


def test_group_file_errors(tmp_path):
    path = _write(tmp_path, "1 1:1\n0 2:1\n")
    _raises(path, r"no group file data\.txt\.query exists")
    bad = _write(tmp_path, "1\nx\n", name="g1")
    _raises(path, r"g1:2: group size must be a positive integer, got 'x'", query_path=bad)
    zero = _write(tmp_path, "2\n0\n", name="g2")
    _raises(path, r"g2:2: group size must be a positive integer", query_path=zero)
    short = _write(tmp_path, "1\n", name="g3")
    _raises(path, r"g3: group sizes add up to 1 rows but the data file has 2", query_path=short)
