"""The plugin host: built-ins, in-process plugins, conflicts, failures, tracing."""

from __future__ import annotations

import types

import pytest
import torch

import colorvid
from colorvid.core.host import PluginHost, PluginLoadWarning


class _Blue(colorvid.Colorizer):
    """Constant blue."""

    def predict_ab_lowres(self, L):
        ab = L.new_zeros((L.shape[0], 2, *L.shape[-2:]))
        ab[:, 1] = -40.0
        return ab


class _AbsLoss(colorvid.Loss):
    requires = ("ab",)

    def __call__(self, outputs, batch):
        return (outputs["ab"] - batch["ab"]).abs().mean()


class _MeanAbs(colorvid.Metric):
    higher_is_better = False

    def per_frame(self, pred, ref):
        return (pred - ref).abs().flatten(1).mean(1)


def _plugin_module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, colorvid.hookimpl(fn))
    return module


@pytest.fixture
def blue_plugin(fresh_host):
    def register_colorizers(register):
        register("blue", _Blue)

    def register_losses(register):
        register("abs", _AbsLoss, description="mean absolute ab error")

    def register_metrics(register):
        register("mean-abs", _MeanAbs)

    plugin = _plugin_module(
        "blue_plugin",
        register_colorizers=register_colorizers,
        register_losses=register_losses,
        register_metrics=register_metrics,
    )
    assert fresh_host.add_plugin(plugin, name="blue_plugin", distribution="tests", version="1")
    yield fresh_host
    fresh_host.unregister("blue_plugin")


def test_builtin_grey_is_registered_like_any_plugin(fresh_host):
    entry = fresh_host.entry("colorizer", "grey")
    assert entry.plugin == "grey" and entry.distribution == "colorvid"
    assert entry.version == colorvid.__version__
    grey = colorvid.create_colorizer("grey")
    L = torch.full((2, 1, 5, 7), 42.0)
    lab = grey.colorize_lab(L)
    assert lab.shape == (2, 3, 5, 7)
    assert torch.equal(lab[:, :1], L) and lab[:, 1:].abs().max() == 0


def test_in_process_plugin_registers_all_three_kinds(blue_plugin):
    records = {(r["kind"], r["name"]): r for r in colorvid.list_plugins()}
    assert records[("colorizer", "blue")]["distribution"] == "tests"
    assert records[("loss", "abs")]["description"] == "mean absolute ab error"
    # Without a description the factory's first docstring line is used.
    assert records[("colorizer", "blue")]["description"] == "Constant blue."
    blue = colorvid.create_colorizer("blue")
    assert blue.name == "blue"
    ab = blue.predict_ab(torch.full((1, 1, 3, 3), 50.0))
    assert torch.all(ab[:, 1] == -40.0)
    loss = colorvid.create_loss("abs")
    value = loss({"ab": torch.ones(1, 2, 2, 2)}, {"ab": torch.zeros(1, 2, 2, 2)})
    assert value.item() == 1.0
    metric = colorvid.create_metric("mean-abs")
    video = torch.zeros(3, 3, 4, 4, dtype=torch.float64)
    assert metric.compute(video + 0.25, video) == pytest.approx(0.25)
    blue_plugin.unregister("blue_plugin")
    assert "blue" not in blue_plugin.names("colorizer")


def test_duplicate_name_is_reported_and_first_one_kept(fresh_host):
    def register_colorizers(register):
        register("grey", _Blue)
        register("blue2", _Blue)

    plugin = _plugin_module("dupe", register_colorizers=register_colorizers)
    fresh_host.add_plugin(plugin, name="dupe")
    try:
        with pytest.warns(PluginLoadWarning, match="already taken by plugin 'grey'"):
            names = fresh_host.names("colorizer")
        assert "blue2" in names  # the plugin's other registrations still work
        assert fresh_host.entry("colorizer", "grey").plugin == "grey"
        errors = [e for e in fresh_host.errors if e.plugin == "dupe"]
        assert len(errors) == 1 and "'grey'" in str(errors[0])
    finally:
        fresh_host.unregister("dupe")


def test_plugin_that_fails_to_import_is_reported_others_work():
    with pytest.warns(PluginLoadWarning, match="colorvid_no_such_plugin"):
        host = PluginHost.load(
            builtin=("colorvid.plugins.grey", "colorvid_no_such_plugin"), entry_points=False
        )
    err = [e for e in host.errors if e.plugin == "colorvid_no_such_plugin"][0]
    assert isinstance(err.error, ModuleNotFoundError)
    assert "ModuleNotFoundError" in err.record()["traceback"]
    assert host.names("colorizer") == ["grey"]


def test_plugin_whose_hook_raises_is_reported_others_work(fresh_host):
    def register_colorizers(register):
        raise RuntimeError("model file missing")

    fresh_host.add_plugin(_plugin_module("broken", register_colorizers=register_colorizers),
                          name="broken")
    try:
        with pytest.warns(PluginLoadWarning, match="model file missing"):
            assert "grey" in fresh_host.names("colorizer")
        err = [e for e in fresh_host.errors if e.plugin == "broken"][0]
        assert isinstance(err.error, RuntimeError)
    finally:
        fresh_host.unregister("broken")


@pytest.mark.parametrize(
    "name, factory, message",
    [("Bad Name", _Blue, "invalid colorizer name"), ("ok", 42, "not callable")],
)
def test_invalid_registrations_are_refused(fresh_host, name, factory, message):
    def register_colorizers(register):
        register(name, factory)

    fresh_host.add_plugin(_plugin_module("invalid", register_colorizers=register_colorizers),
                          name="invalid")
    try:
        with pytest.warns(PluginLoadWarning, match=message):
            names = fresh_host.names("colorizer")
            assert "grey" in names and "ok" not in names and "Bad Name" not in names
    finally:
        fresh_host.unregister("invalid")


def test_unknown_names_list_the_choices(fresh_host):
    with pytest.raises(KeyError, match=r"unknown colorizer 'nope'; available: .*\bgrey\b"):
        colorvid.create_colorizer("nope")
    with pytest.raises(ValueError, match="accepted: colorizer, loss, metric"):
        colorvid.list_plugins("shader")


def test_factory_returning_the_wrong_type_is_refused(fresh_host):
    def register_colorizers(register):
        register("notacolorizer", lambda: object())

    fresh_host.add_plugin(_plugin_module("wrong", register_colorizers=register_colorizers),
                          name="wrong")
    try:
        with pytest.raises(TypeError, match="not a colorvid.Colorizer"):
            colorvid.create_colorizer("notacolorizer")
    finally:
        fresh_host.unregister("wrong")


def test_tracing_reports_every_hook_call(fresh_host):
    lines: list[str] = []
    undo = fresh_host.enable_tracing(lines.append)
    try:
        fresh_host.collect()
    finally:
        undo()
    assert "colorvid: hook register_colorizers -> [grey]" in lines
    assert "colorvid: hook register_colorizers ok" in lines


def test_colorizer_interface_resizes_and_validates():
    class Quarter(colorvid.Colorizer):
        render_size = 16

        def predict_ab_lowres(self, L):
            assert L.shape[-2:] == (16, 16)  # the model sees its internal resolution
            return torch.ones(L.shape[0], 2, 4, 4)  # and may answer at a quarter of it

    model = Quarter()
    ab = model.predict_ab(torch.full((2, 1, 30, 50), 50.0))
    assert ab.shape == (2, 2, 30, 50) and torch.allclose(ab, torch.ones_like(ab))
    ab2, state = model.predict_sequence(torch.full((3, 1, 9, 9), 50.0))
    assert ab2.shape == (3, 2, 9, 9) and state is None
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model.predict_ab(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="one entry per frame"):
        model.predict_sequence(torch.zeros(3, 1, 8, 8), resets=torch.zeros(2, dtype=torch.bool))
