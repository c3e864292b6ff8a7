"""CPU convolution autotuning: the im2col path computes the same convolution, and choices survive resume."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from i2i.config import load_config
from i2i.methods import build_method, method_class
from i2i.nets import winograd
from i2i.train import Trainer, conv_tuning

# Long enough to be tuned (the tests stop early); with conftest's tiny Pix2Pix (``tiny_overrides``).
TUNED = f"train.max_steps={conv_tuning.MIN_STEPS}"


@pytest.fixture(autouse=True)
def _fresh_choices():
    saved = conv_tuning.choices()
    conv_tuning._CHOICES.clear()
    yield
    conv_tuning._CHOICES.clear()
    conv_tuning.load_choices(saved)


@pytest.mark.parametrize(
    "module",
    [
        nn.Conv2d(4, 6, 4, 2, 1),
        nn.Conv2d(4, 6, 3, 1, 1, bias=False),
        nn.ConvTranspose2d(6, 4, 4, 2, 1),
        nn.ConvTranspose2d(6, 4, 3, 2, 1, output_padding=1, groups=2),
    ],
    ids=["conv", "conv-nobias", "transposed", "transposed-groups"],
)
def test_im2col_path_matches_the_module_with_gradients_and_double_backward(module: nn.Module) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, module.in_channels, 9, 9, requires_grad=True)
    expected, got = module(x), conv_tuning.im2col_convolution(module, x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    params = [x, *module.parameters()]
    first = torch.autograd.grad(expected.square().sum(), params, create_graph=True)
    second = torch.autograd.grad(got.square().sum(), params, create_graph=True)
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    # Gradient penalties differentiate the input gradient again (WGAN-GP, R1).
    again = torch.autograd.grad(first[0].square().sum(), module.weight)[0]
    torch.testing.assert_close(
        torch.autograd.grad(second[0].square().sum(), module.weight)[0], again, rtol=1e-3, atol=1e-4
    )


def test_installed_nets_keep_their_state_dict_and_outputs_and_record_choices() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(8, 3, 4, 2, 1))
    keys = list(net.state_dict())
    x = torch.randn(2, 3, 8, 8)
    expected = net(x)
    assert conv_tuning.install({"g": net}) == 2
    assert conv_tuning.install({"g": net}) == 0  # once only
    assert list(net.state_dict()) == keys
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-5)
    net(x).sum().backward()
    made = conv_tuning.choices()
    assert len(made) == 4  # two layers, without and with gradients
    assert set(made.values()) <= set(conv_tuning.BACKENDS)
    assert any(key.endswith("grads:w") for key in made) and any(key.endswith("grads:-") for key in made)


def test_large_convolutions_stay_with_onednn_untimed() -> None:
    big = nn.Conv2d(3, 4, 3, padding=1)
    assert not conv_tuning.worth_tuning(big, torch.zeros(1, 3, 128, 128))
    assert conv_tuning.worth_tuning(big, torch.zeros(1, 3, 32, 32))
    assert conv_tuning.worth_tuning(nn.ConvTranspose2d(512, 512, 4, 2, 1), torch.zeros(1, 512, 16, 16))


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"onednn": 10.0, "im2col": 8.0, "winograd": 5.0}, "winograd"),
        ({"onednn": 10.0, "im2col": 7.0, "winograd": 8.0}, "im2col"),
        ({"onednn": 10.0, "im2col": 9.5, "winograd": 9.5}, "onednn"),  # within the margin: noise
    ],
)
def test_the_fastest_backend_wins_by_the_margin(monkeypatch, times: dict, expected: str) -> None:
    raced = []

    def race(candidates, backward):
        raced.append(sorted(candidates))
        return {name: times[name] for name in candidates}

    monkeypatch.setattr(conv_tuning, "_race", race)
    module = nn.Conv2d(8, 8, 3, padding=1)
    assert conv_tuning._benchmark(module, torch.zeros(1, 8, 16, 16), "xw") == expected
    assert raced == [["im2col", "onednn", "winograd"]]
    raced.clear()
    conv_tuning._benchmark(nn.Conv2d(8, 8, 4, 2, 1), torch.zeros(1, 8, 16, 16), "xw")
    assert raced == [["im2col", "onednn"]]  # stride 2: no Winograd candidate


def test_a_winograd_choice_computes_the_same_layer_with_gradients(monkeypatch) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 4, padding=1))
    plain = copy.deepcopy(net)
    x = torch.randn(2, 4, 12, 12)
    conv_tuning.install({"g": net})
    hidden = torch.zeros(2, 8, 12, 12)
    keys = [conv_tuning._signature(net[0], x, "w"), conv_tuning._signature(net[2], hidden, "xw")]
    conv_tuning.load_choices(dict.fromkeys(keys, conv_tuning.WINOGRAD))
    calls = []
    original = winograd.winograd_conv2d
    monkeypatch.setattr(winograd, "winograd_conv2d", lambda *a: calls.append(a[1].shape) or original(*a))
    net(x).square().sum().backward()
    plain(x).square().sum().backward()
    assert calls == [net[0].weight.shape, net[2].weight.shape]
    assert conv_tuning.choices() == dict.fromkeys(keys, conv_tuning.WINOGRAD)  # nothing else was timed
    for (name, mine), theirs in zip(net.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-5, msg=name)


def make_trainer(tiny_overrides: list[str], *extra: str) -> Trainer:
    cfg = load_config("demo_pix2pix", overrides=[*tiny_overrides, TUNED, *extra])
    train_set, _ = method_class(cfg.method).datasets(cfg)
    return Trainer(cfg, build_method(cfg), train_set, progress=False)


def test_short_runs_and_compiled_runs_are_not_tuned(tiny_overrides) -> None:
    short = make_trainer(tiny_overrides, "train.max_steps=10")
    assert not any("_untuned_forward" in m.__dict__ for m in short.method.nets["g"].modules())
    compiled = make_trainer(tiny_overrides, "train.compile=true")  # compilation is lazy: nothing runs here
    assert not any("_untuned_forward" in m.__dict__ for m in compiled.method.nets["g"].modules())
    tuned = make_trainer(tiny_overrides)
    assert any("_untuned_forward" in m.__dict__ for m in tuned.method.nets["g"].modules())


def test_resume_uses_the_checkpoints_choices(tiny_overrides) -> None:
    """A resumed process would time the backends anew (and might choose otherwise): the saved choices win."""
    straight = make_trainer(tiny_overrides, "name=straight")
    straight.fit(stop_at=4)
    made = conv_tuning.choices()
    assert made

    make_trainer(tiny_overrides, "name=split").fit(stop_at=2)
    conv_tuning._CHOICES.clear()  # as in a new process that measured the opposite everywhere
    opposite = {
        conv_tuning.ONEDNN: conv_tuning.IM2COL,
        conv_tuning.IM2COL: conv_tuning.ONEDNN,
        conv_tuning.WINOGRAD: conv_tuning.ONEDNN,
    }
    conv_tuning.load_choices({k: opposite[v] for k, v in made.items()})
    resumed = make_trainer(tiny_overrides, "name=split")
    resumed.fit(resume="auto", stop_at=4)
    assert conv_tuning.choices() == made
    for name, net in straight.method.nets.items():
        theirs = resumed.method.nets[name].state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(value, theirs[key]), f"{name}.{key}"
