"""TransVAE (react/reaction/models/transvae.py): the generator contract, the official sizes and
loss, causality of the online model, and ONNX parity of ``generate``; tiny random-init models."""

import math
import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from react.config import config_layers
from react.reaction.contract import ReactionGenerator
from react.reaction.models.transvae import TransVAE, TransVAEConfig, vae_loss

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
VIDEO, AUDIO = 6, 4


def tiny(online: bool = False, frames: int = 8, **kw) -> TransVAE:
    cfg = TransVAEConfig(video_dim=VIDEO, audio_dim=AUDIO, dim=8, heads=2, ff=16, dropout=0.0, online=online,
                         window=4, feedback=3, **kw)
    torch.manual_seed(0)
    return TransVAE(cfg, frames)


def conditions(windows: int, frames: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(windows, frames, VIDEO, generator=g),
            "audio": torch.randn(windows, frames, AUDIO, generator=g)}


def paper_model(online: bool, overrides: dict) -> TransVAE:
    name = "transvae_online_paper.yaml" if online else "transvae_paper.yaml"
    cfg = OmegaConf.merge(*(OmegaConf.create(layer) for _, layer in config_layers(CONFIGS / name)))
    model = OmegaConf.merge(OmegaConf.structured(TransVAEConfig), cfg.model, overrides)
    return TransVAE(OmegaConf.to_object(model), cfg.data.num_frames)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_contract_and_shapes():
    off, on = tiny().eval(), tiny(online=True).eval()
    for model in (off, on):
        assert isinstance(model, ReactionGenerator) and model.inputs == ("video", "audio")
    assert (off.frames, off.causal, off.feedback) == (8, False, 0)
    assert (on.frames, on.causal, on.feedback) == (8, True, 3)
    assert off.noise_shape(3, 5) == off.draw_noise(3, 5).shape == (3, 5, 1, 8)  # one latent per window
    assert off.generate(conditions(3, 8), off.draw_noise(3, 5)).shape == (3, 5, 8, 25)
    past = {**conditions(3, 8), "past": torch.rand(3, 5, 3, 25)}
    assert on.noise_shape(3, 5) == (3, 5, 2, 8)  # one latent per internal window of 4 frames
    assert on.generate(past, on.draw_noise(3, 5)).shape == (3, 5, 8, 25)
    two = tiny(online=True, frames=16, train_window=8)  # trains on 2 windows of 8, generates 4 of 4
    attrs, coeffs, mu, _ = two.training_pass(*conditions(2, 16).values())
    assert (attrs.shape, coeffs.shape, mu.shape) == ((2, 16, 25), (2, 16, 58), (2, 2, 8))
    assert two.noise_shape(1, 1) == (1, 1, 4, 8)
    raw = tiny(video_encoder="conv3d").eval()  # the official encoder of raw frames
    video = torch.randn(2, 8, 3, 64, 64)
    assert raw.generate({"video": video, "audio": torch.randn(2, 8, AUDIO)}, raw.draw_noise(2, 3)).shape \
        == (2, 3, 8, 25)


def test_bad_settings_and_inputs_are_named():
    with pytest.raises(ValueError, match="video_encoder must be one of"):
        tiny(video_encoder="swin")
    with pytest.raises(ValueError, match="multiples of model.window and model.train_window"):
        tiny(online=True, frames=10)
    model = tiny(online=True).eval()
    with pytest.raises(ValueError, match=r"missing \['past'\]"):
        model.generate(conditions(1, 8), model.draw_noise(1, 2))
    with pytest.raises(ValueError, match="windows of 8 frames, got 6"):
        tiny().generate(conditions(1, 6), tiny().draw_noise(1, 2))
    with pytest.raises(ValueError, match=r"takes video raw frames \(W, T, 3, H, W\), got shape \(1, 8, 6\)"):
        tiny(video_encoder="conv3d").generate(conditions(1, 8), tiny().draw_noise(1, 2))


def test_generate_is_deterministic_given_noise_and_noise_matters():
    model, cond = tiny().eval(), conditions(2, 8)
    noise = model.draw_noise(2, 3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = model.generate(cond, noise), model.generate(cond, noise.clone())
        c = model.generate(cond, model.draw_noise(2, 3, torch.Generator().manual_seed(1)))
        flat = model.generate(cond, noise, scale=0.0)
    assert torch.equal(a, b)
    assert (a - c).abs().amax(dim=(2, 3)).min() > 1e-4  # every sample differs
    assert (a[:, 0] - a[:, 1]).abs().amax() > 1e-4  # samples of one window differ
    assert torch.allclose(flat[:, 0], flat[:, 1])  # scale 0: the latent mean, one reaction


def run_online(model: TransVAE, cond: dict[str, torch.Tensor], noise: torch.Tensor) -> torch.Tensor:
    """One clip's consecutive windows ``cond`` ``(1, T, dim)`` in order, each fed the last ``feedback``
    frames generated before it (zeros at the start), as generation runs a feedback model:
    ``(S, T, nodes)``; ``noise``: one window's noise per window."""
    out = torch.zeros(noise.shape[1], model.feedback, model.nodes)
    for i in range(len(noise)):
        part = {k: v[:, i * model.frames:(i + 1) * model.frames] for k, v in cond.items()}
        reaction = model.generate({**part, "past": out[None, :, -model.feedback:]}, noise[i:i + 1])
        out = torch.cat([out, reaction[0]], 1)
    return out[:, model.feedback:]


def test_online_model_is_causal_at_its_window_and_trains_as_it_generates():
    model, cond = tiny(online=True, frames=16).eval(), conditions(1, 32)  # 2 calls of 4 windows of 4
    noise = model.draw_noise(2, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = run_online(model, cond, noise)
        for t in (7, 19):  # the ends of internal windows inside the first and the second call
            changed = {k: v.clone() for k, v in cond.items()}
            changed["video"][:, t + 1:] = 5 * torch.randn(1, 31 - t, VIDEO)  # the speaker after frame t
            after = run_online(model, changed, noise)
            assert torch.equal(base[:, :t + 1], after[:, :t + 1])
            assert (base[:, t + 1:] - after[:, t + 1:]).abs().amax() > 1e-5
        # the training pass runs the same windows in order on its own output, from a zero past
        attrs, _, _, _ = model.training_pass(cond["video"][:, :16], cond["audio"][:, :16], noise[0, :1])
    assert torch.allclose(attrs, base[:1, :16], atol=1e-6)


def test_loss_matches_a_hand_computation():
    cfg = TransVAEConfig()
    attrs, target = torch.full((1, 2, 25), 0.5), torch.zeros(1, 2, 25)
    coeffs, coeff_target = torch.zeros(1, 2, 58), torch.ones(1, 2, 58)
    mu, logvar = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.0, math.log(2.0)]]])
    loss, parts = vae_loss(cfg, attrs, coeffs, mu, logvar, target, coeff_target, (attrs + 0.1, coeffs))
    rec = 0.25 + 1.0 + 10 * 1.0  # attributes, 52 expression and (x 10) 6 pose coefficients
    kl = (0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 2 - 1 - math.log(2.0))) / 2
    div = math.exp(-50 * 0.01 / 100) + math.exp(0.0)  # ||0.1||^2 over 2 x 25 values; equal 3DMM
    assert parts["rec"].item() == pytest.approx(rec)
    assert parts["kl"].item() == pytest.approx(kl)
    assert parts["div"].item() == pytest.approx(div)
    assert loss.item() == pytest.approx(rec + 0.0002 * kl + 10 * div)
    no_coeffs, _ = vae_loss(cfg, attrs, coeffs, mu, logvar, target, None, (attrs + 0.1, coeffs))
    assert no_coeffs.item() == pytest.approx(0.25 + 0.0002 * kl + 10 * div)
    validation, parts = vae_loss(cfg, attrs, coeffs, mu, logvar, target, None, None)  # no second pass
    assert validation.item() == pytest.approx(0.25 + 0.0002 * kl) and set(parts) == {"rec", "kl"}


def batch(frames: int = 8) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return {**conditions(3, frames), "reactions": torch.rand(3, 2, frames, 25, generator=g),
            "mask": torch.tensor([[True, True], [False, True], [True, False]])}


def test_training_loss_reconstructs_the_first_real_reaction():
    model, b = tiny(), batch()
    torch.manual_seed(5)
    _, parts = model.training_loss(b)
    torch.manual_seed(5)
    attrs, _, _, _ = model.training_pass(b["video"], b["audio"])
    target = b["reactions"][torch.arange(3), torch.tensor([0, 1, 0])]
    assert parts["rec"].item() == pytest.approx(torch.nn.functional.mse_loss(attrs, target).item(), rel=1e-6)


def test_evaluation_loss_is_the_official_validation_loss_fixed_and_leaves_the_global_rng_alone():
    model, b = tiny(online=True, frames=8).eval(), batch()
    state = torch.get_rng_state()
    with torch.no_grad():
        first, parts = model.training_loss(b)
        again, _ = model.training_loss(b)
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(first, again)
    assert set(parts) == {"rec", "kl"}  # no diversity term, as the official validation
    assert first.item() == pytest.approx((parts["rec"] + 0.0002 * parts["kl"]).item())


@pytest.mark.parametrize("online", [False, True])
def test_one_step_reduces_the_loss(online):
    model, b = tiny(online=online), batch()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss() -> torch.Tensor:
        torch.manual_seed(7)  # the same noise before and after the step
        return model.training_loss(b)[0]

    before = loss()
    before.backward()
    optimiser.step()
    assert loss().item() < before.item()


def test_paper_sizes_have_the_official_parameter_counts():
    """The official TransformerVAE (baseline_react2023, img_size 224, audio_dim 78, feature_dim 128)
    has 1,315,891 parameters offline and 1,670,835 online. Offline, its ``fusion`` layer (27,136) is
    built but never called; online, its past embedding reads 58 3DMM values (7,552) where ours reads
    the 25 attributes fed back (3,328)."""
    raw = {"video_encoder": "conv3d", "audio_dim": 78}
    assert count(paper_model(False, raw)) == 1_315_891 - 27_136 == 1_288_755
    online = paper_model(True, raw)
    assert count(online) == 1_670_835 - (7_552 - 3_328) == 1_666_611
    assert (online.frames, online.step, online.train_step, online.feedback) == (256, 8, 16, 240)
    # on this project's per-frame features: Linear(768, 128) (98,432) in place of the Conv3D stack and
    # its linear layer (664,288), Linear(768, 128) audio (98,432) in place of Linear(78, 128) (10,112)
    swap = 664_288 - 98_432 + 10_112 - 98_432
    assert count(paper_model(False, {})) == 1_288_755 - swap == 811_219
    assert count(paper_model(True, {})) == 1_666_611 - swap == 1_189_075


@pytest.mark.parametrize("online", [False, True])
def test_onnx_export_of_generate_matches_pytorch(online, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = tiny(online=online).eval()
    cond = conditions(2, model.frames)
    if online:
        cond["past"] = torch.rand(2, 3, model.feedback, 25)
    noise = model.draw_noise(2, 3, torch.Generator().manual_seed(0))
    names = [*cond, "noise"]

    class Generate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *xs):
            return self.model.generate(dict(zip(names[:-1], xs[:-1])), xs[-1])

    path = tmp_path / "transvae.onnx"
    with warnings.catch_warnings():  # the legacy exporter's notes on traced shape checks
        warnings.simplefilter("ignore")
        torch.onnx.export(Generate(), tuple(cond.values()) + (noise,), str(path), input_names=names,
                          output_names=["reactions"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in zip(names, [*cond.values(), noise])})[0]
    with torch.no_grad():
        want = model.generate(cond, noise)
    assert got.shape == (2, 3, model.frames, 25)
    assert abs(got - want.numpy()).max() < 1e-4
