"""`python -m medlib data`: fetch real datasets into DATA_ROOT, check them with the adapters."""

import json
import shutil

import pytest

from medlib.__main__ import main
from medlib.data import load_benchmark
from medlib.data.io import DatasetError
from medlib.data.prepare import SOURCES, check, fetch
from medlib.synthetic import build_benchmark


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A DATA_ROOT laid out like the real one, filled from the tiny embedded benchmark."""
    bench = tmp_path_factory.mktemp("bench")
    build_benchmark(bench, profile="tiny", seed=0, parts=("chest",))
    out = bench / "tiny_seed0"
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(out / "chest" / "ms_cxr", root / "ms_cxr")
    return root, out


def test_check_counts_every_split_with_the_adapters(data_root):
    root, bench = data_root
    rows = {(r["dataset"], r["split"]): r for r in check(root)}
    for split in ("train", "val", "test"):
        assert rows[("ms_cxr", split)]["records"] == len(load_benchmark(bench, "ms_cxr", split))
    assert rows[("umrg", "")]["error"] == "absent"


def test_check_reports_a_broken_file_and_the_cli_fails(tmp_path, data_root, capsys):
    root, _ = data_root
    broken = tmp_path / "data"
    shutil.copytree(root, broken)
    split_file = next((broken / "ms_cxr").glob("*test*.json"))
    rows = json.loads(split_file.read_text())
    rows[0] = {"nonsense": 1}
    split_file.write_text(json.dumps(rows))
    assert main(["data", "check", "--root", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "ms_cxr" in out and split_file.name in out  # the adapter's error names the file
    assert main(["data", "check", "--root", str(root)]) == 0


def test_fetch_downloads_hub_datasets_into_their_folder(tmp_path, monkeypatch):
    calls = []
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **kw: calls.append(kw))
    target = fetch("m3d_refseg", tmp_path)
    assert target == tmp_path / "m3d_refseg" and target.is_dir()
    assert calls == [dict(repo_id="GoodBaiBai88/M3D-RefSeg", repo_type="dataset", local_dir=str(target))]


def test_fetch_without_network_says_how_to_do_it_by_hand(tmp_path, monkeypatch):
    import huggingface_hub

    def offline(**kw):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DatasetError, match="huggingface-cli download GoodBaiBai88/M3D-RefSeg"):
        fetch("m3d_refseg", tmp_path)


def test_credentialed_sources_print_their_steps():
    text = fetch("ms_cxr", "unused")
    assert "physionet.org/files/ms-cxr" in text and "data check" in text
    assert "--hub-id" in fetch("umrg", "unused")  # no dataset id is known offline: the user names it
    assert set(SOURCES) == {"ms_cxr", "chestxray8", "umrg", "m3d_refseg"}
    with pytest.raises(ValueError, match="unknown dataset"):
        fetch("mimic", "unused")
