"""The catalog: registry and local models sorted into the tab that can run them, by opaque ids."""

from __future__ import annotations

import pytest

from i2i import hub
from i2i.errors import I2IError
from i2i_app.catalog import Catalog


def test_local_models_are_classified_by_task_and_unusable_files_offered_nowhere(tiny_models):
    catalog = Catalog(tiny_models.folder).scan()
    local = {e.label: e for e in catalog.entries.values() if e.source == "local"}
    expected = {"tiny_unet.safetensors", "cyclegan/two_way.safetensors", "tiny_x2.safetensors", "broken.pth"}
    if tiny_models.text2image is not None:
        expected.add("tiny_t2i.safetensors")
        assert local["tiny_t2i.safetensors"].task == "text2image"
    assert set(local) == expected
    assert local["tiny_unet.safetensors"].task == "translate"
    assert local["tiny_unet.safetensors"].directions == ("AtoB",)
    assert local["cyclegan/two_way.safetensors"].directions == ("AtoB", "BtoA")
    assert (local["tiny_x2.safetensors"].task, local["tiny_x2.safetensors"].scale) == ("upscale", 2)
    broken = local["broken.pth"]
    assert broken.task == "" and broken.detail.startswith("cannot be loaded")
    assert str(tiny_models.folder) not in broken.detail  # the Models tab shows it: no server path
    assert [e.label for e in catalog.offered("translate")][:2] == [
        "cyclegan/two_way.safetensors",
        "tiny_unet.safetensors",
    ]
    assert "broken.pth" not in [
        e.label for t in ("translate", "upscale", "text2image") for e in catalog.offered(t)
    ]
    assert local["tiny_unet.safetensors"].id == "local:tiny_unet.safetensors"  # ids carry no absolute path


def test_registry_models_are_offered_once_installed(tiny_models):
    catalog = Catalog(None).scan()
    assert catalog.offered("translate") == [] and catalog.offered("upscale") == []
    names = {e.label: e for e in catalog.downloadable()}
    assert names["horse2zebra"].task == "translate" and names["RealESRGAN_x4plus"].task == "upscale"
    assert names["RealESRGAN_x4plus"].scale == 4 and names["RealESRGAN_x2plus"].scale == 2
    hub.weights_dir().mkdir(parents=True, exist_ok=True)
    marker = hub.weights_dir() / hub.get_weights("horse2zebra").file
    marker.write_bytes(b"placeholder")  # installed = present in the cache (verified when loaded)
    try:
        catalog.scan()
        assert [e.id for e in catalog.offered("translate")] == ["registry:horse2zebra"]
        assert "horse2zebra" not in [e.label for e in catalog.downloadable()]
    finally:
        marker.unlink()


def test_get_refuses_unknown_uninstalled_and_wrong_task_ids(tiny_models):
    catalog = Catalog(tiny_models.folder).scan()
    assert catalog.get("local:tiny_unet.safetensors", "translate").task == "translate"
    for model_id, task in [
        ("local:../../etc/passwd", "translate"),
        (str(tiny_models.translate), "translate"),  # a path is not an id
        ("local:tiny_unet.safetensors", "upscale"),
        ("registry:horse2zebra", "translate"),  # not downloaded
        ("local:broken.pth", "translate"),
        (None, "translate"),
    ]:
        with pytest.raises(I2IError, match="choose one of the listed models"):
            catalog.get(model_id, task)


def test_describe_model_reads_exported_models_and_checkpoints_from_the_header(tiny_models, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("describe_model loaded the weights")

    monkeypatch.setattr(hub, "load_model_with_info", no_loading)
    info = hub.describe_model(tiny_models.upscale)
    assert (info.task, info.name, info.scale, info.value_range) == ("upscale", "srvgg_compact", 2, (0.0, 1.0))
    info = hub.describe_model(tiny_models.two_way, net="g_ba")
    assert (info.task, info.name) == ("translate", "unet")


def test_download_fetches_only_downloadable_registry_models(tiny_models, monkeypatch):
    fetched = []

    def fake_download(name, folder=None, *, quiet=False, **options):  # the tests never download
        fetched.append(name)
        target = hub.weights_dir() / hub.get_weights(name).file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"weights")
        return target

    monkeypatch.setattr(hub, "download_weights", fake_download)
    catalog = Catalog(tiny_models.folder).scan()
    try:
        entry = catalog.download("style_monet")
        assert fetched == ["style_monet"] and entry.installed
        assert "registry:style_monet" in [e.id for e in catalog.offered("translate")]
        for name in ("style_monet", "tiny_unet.safetensors", "../etc/passwd", None):  # installed, local, junk
            with pytest.raises(I2IError, match="choose one of the downloadable models"):
                catalog.download(name)
        assert fetched == ["style_monet"]
    finally:
        (hub.weights_dir() / hub.get_weights("style_monet").file).unlink(missing_ok=True)
