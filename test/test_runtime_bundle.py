"""Model bundles: round trip (directory and archives), weights never unpickled, clear errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
import yaml

from masksem_core.model import ActionClassifier, ModelConfig
from masksem_core.runtime.bundle import BundleError, load_bundle, save_bundle


@pytest.fixture(scope="module")
def model() -> ActionClassifier:
    torch.manual_seed(0)
    m = ActionClassifier(ModelConfig(num_frames=16, dim=32, depth=2, heads=4, layout="ntu25"), 4, "linear")
    with torch.no_grad():
        m.head.norm.running_mean.normal_(0, 0.5)
        m.head.norm.running_var.uniform_(0.5, 2.0)
    return m.eval()


LABELS = ["wave", "point", "handover", "idle"]


def clips(n: int = 3) -> torch.Tensor:
    x = torch.randn(n, 3, 16, 25, 2, generator=torch.Generator().manual_seed(1))
    x[0, ..., 1] = 0
    return x


@pytest.mark.parametrize("name", ["bundle", "bundle.tar.gz", "bundle.tgz", "bundle.tar", "bundle.zip"])
def test_round_trip_gives_the_same_model_and_metadata(tmp_path, model, name):
    path = save_bundle(tmp_path / name, model, LABELS, "ntu25", fps=30.0, window_frames=48)
    b = load_bundle(path)
    assert b.labels == LABELS and b.layout.name == "ntu25" and b.fps == 30.0
    assert (b.clip_length, b.window_frames, b.num_persons, b.centre_joint) == (16, 48, 2, 1)
    assert b.crop_ratio == 0.95 and not b.model.training
    with torch.no_grad():
        torch.testing.assert_close(b.model(clips()), model(clips()), rtol=0, atol=0)


def test_weights_are_safetensors_not_a_pickle(tmp_path, model):
    path = save_bundle(tmp_path / "b", model, LABELS, "ntu25", fps=30.0)
    raw = (path / "weights.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert "encoder.blocks.0.attn.qkv.weight" in header
    meta = yaml.safe_load((path / "bundle.yaml").read_text())
    assert meta["format"] == "masksem-bundle" and meta["model_config"]["dim"] == 32
    assert meta["window_frames"] == 16 and meta["normalisation"] == {"centre_joint": 1, "crop_ratio": 0.95}
    # A pickled state dict under the weights name is refused, not unpickled.
    torch.save(model.state_dict(), path / "weights.safetensors")
    with pytest.raises(BundleError, match="weights_sha256"):
        load_bundle(path)
    with pytest.raises(BundleError, match="does not fit"):
        load_bundle(path, verify=False)


def test_corrupted_or_inconsistent_bundles_name_the_problem(tmp_path, model):
    path = save_bundle(tmp_path / "b", model, LABELS, "ntu25", fps=30.0)
    meta_file = path / "bundle.yaml"
    good = yaml.safe_load(meta_file.read_text())

    def with_meta(**changes):
        meta_file.write_text(yaml.safe_dump({**good, **changes}))
        return path

    with pytest.raises(BundleError, match="'labels'"):
        load_bundle(with_meta(labels="wave"))
    with pytest.raises(BundleError, match="3 labels but num_classes is 4"):
        load_bundle(with_meta(labels=LABELS[:3]))
    with pytest.raises(BundleError, match="unknown joint layout 'coco17'"):
        load_bundle(with_meta(layout="coco17"))
    with pytest.raises(BundleError, match="model_config.depht"):
        load_bundle(with_meta(model_config={**good["model_config"], "depht": 3}))
    with pytest.raises(BundleError, match="inconsistent fps"):
        load_bundle(with_meta(fps=0.0))
    with pytest.raises(BundleError, match="format_version 9"):
        load_bundle(with_meta(format_version=9))
    with pytest.raises(BundleError, match="not a MaskSem bundle"):
        load_bundle(with_meta(format="other"))
    with pytest.raises(BundleError, match="missing field 'fps'"):
        load_bundle(_without(meta_file, good, "fps"))
    meta_file.write_text(yaml.safe_dump(good))
    raw = bytearray((path / "weights.safetensors").read_bytes())
    raw[-10] ^= 0xFF
    (path / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="does not match weights_sha256"):
        load_bundle(path)
    with pytest.raises(BundleError, match="bundle not found"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(BundleError, match="cannot be read"):
        load_bundle(tmp_path / "junk.tar.gz")


def _without(meta_file, good, key):
    meta_file.write_text(yaml.safe_dump({k: v for k, v in good.items() if k != key}))
    return meta_file.parent


def test_save_rejects_mismatched_labels_and_layouts(tmp_path, model):
    with pytest.raises(BundleError, match="3 labels for a model with 4 classes"):
        save_bundle(tmp_path / "b", model, LABELS[:3], "ntu25", fps=30.0)
    with pytest.raises(BundleError, match="kinect_v1_20 has 20 joints"):
        save_bundle(tmp_path / "b", model, LABELS, "kinect_v1_20", fps=30.0)
    assert not (tmp_path / "b" / "bundle.yaml").exists()


def test_rewriting_a_bundle_leaves_no_temp_files(tmp_path, model):
    path = save_bundle(tmp_path / "b", model, LABELS, "ntu25", fps=30.0)
    save_bundle(path, model, LABELS, "ntu25", fps=25.0)
    assert sorted(p.name for p in path.iterdir()) == ["bundle.yaml", "weights.safetensors"]
    assert load_bundle(path).fps == 25.0


def test_an_archive_member_that_inflates_too_far_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decompression bomb is cut off at the bound, not read into memory."""
    import zipfile

    import masksem_core.runtime.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "MAX_MEMBER_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle/bundle.yaml", "labels: []\n")
        zf.writestr("bundle/weights.safetensors", b"\0" * (8 << 20))  # 8 MiB of zeros, a few KiB zipped
    assert bomb.stat().st_size < 100_000
    with pytest.raises(BundleError, match="inflates past 1 MiB"):
        bundle_module.read_bundle_files(bomb)
