"""BeLFusion: shapes, sampling given noise, the two losses and the noise schedule against hand
computations, an optimisation step per stage, ONNX parity of generate, the official sizes."""

import math
from pathlib import Path

import pytest
import torch
from helpers.regnn_data import seeded_one_thread  # noqa: F401 - autouse
from omegaconf import OmegaConf
from torch import nn

from react.config import ConfigError
from react.engine.checkpoint import CheckpointError
from react.reaction.belfusion_loader import attribute_windows, load_behavioural_vae
from react.reaction.models.belfusion import (
    BehaviouralVAE,
    BeLFusion,
    BeLFusionConfig,
    VAEConfig,
    noise_schedule,
    step_embedding,
)

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 6


def tiny(**kw) -> BeLFusionConfig:
    settings = {"hidden": 16, "layers": 3, "time_channels": 6, "k": 3, **kw}
    return BeLFusionConfig(vae=VAEConfig(hidden=8, latent=8, decoder_mlp=[8]), **settings)


def speaker_batch(windows: int = 4) -> dict[str, torch.Tensor]:
    return {"speaker": torch.rand(windows, FRAMES, 25), "reactions": torch.rand(windows, 2, FRAMES, 25),
            "mask": torch.ones(windows, 2, dtype=torch.bool)}


def test_shapes_and_contract_attributes():
    model = BeLFusion(tiny(), FRAMES).eval()
    assert (model.inputs, model.causal, model.feedback, model.frames, model.nodes) == (("speaker",), False, 0,
                                                                                        FRAMES, 25)
    assert model.noise_shape(3, 2) == (3, 2, 8)
    noise = model.draw_noise(3, 2, torch.Generator().manual_seed(0))
    out = model.generate({"speaker": torch.rand(3, FRAMES, 25)}, noise)
    assert out.shape == (3, 2, FRAMES, 25)
    vae = BehaviouralVAE(VAEConfig(hidden=8, latent=4, decoder_mlp=[8], coefficients=5), FRAMES)
    state = vae.encode(torch.rand(3, FRAMES, 25))
    mu, logvar = vae.posterior(state)
    assert state.shape == (3, 8) and mu.shape == logvar.shape == (3, 4)
    assert vae.decode(mu).shape == (3, FRAMES, 25)
    features = BeLFusion(tiny(condition="features", video_dim=5, audio_dim=3), FRAMES).eval()
    assert features.inputs == ("video", "audio")
    out = features.generate({"video": torch.rand(2, FRAMES, 5), "audio": torch.rand(2, FRAMES, 3)},
                            features.draw_noise(2, 4))
    assert out.shape == (2, 4, FRAMES, 25)


def test_generate_is_deterministic_given_noise_and_differs_across_noise():
    model = BeLFusion(tiny(), FRAMES).eval()
    model.fit_statistics(torch.rand(32, FRAMES, 25))
    speaker = {"speaker": torch.rand(2, FRAMES, 25)}
    noise = model.draw_noise(2, 3, torch.Generator().manual_seed(1))
    again = model.draw_noise(2, 3, torch.Generator().manual_seed(1))
    assert torch.equal(noise, again)
    first = model.generate(speaker, noise)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(first, model.generate(speaker, noise))
    other = model.generate(speaker, model.draw_noise(2, 3, torch.Generator().manual_seed(2)))
    assert (first - other).abs().amax() > 1e-4
    assert (first[:, 0] - first[:, 1]).abs().amax() > 1e-4  # the samples of one window differ


def test_vae_loss_against_hand_computation():
    vae = BehaviouralVAE(VAEConfig(nodes=2, hidden=4, latent=2, decoder_mlp=[3], coefficients=1,
                                   mse_weight=1.0, kld_weight=0.1, coeff_weight=0.5), frames=4)
    with torch.no_grad():  # constant outputs: reconstruction (0, 1) per frame, 3DMM head 2
        vae.readout[-1].weight.zero_()
        vae.readout[-1].bias.copy_(torch.tensor([0.0, 1.0]))
        vae.coefficients[-1].weight.zero_()
        vae.coefficients[-1].bias.fill_(2.0)
    windows = torch.stack([torch.full((4, 2), 0.5), torch.full((4, 2), 1.0)])
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(2.0), 0.0]])
    loss, parts = vae.loss(windows, mu, logvar, mu, torch.zeros(2, 4, 1))
    mse = (0.25 + 0.25 + 1.0 + 0.0) / 4  # per window and node: (0 - .5)^2, (1 - .5)^2, (0 - 1)^2, 0
    kld = (0.5 + (-0.5) * (1 + math.log(2.0) - 2.0)) / 2  # mu 1: 1/2; var 2: (1 - log 2) / 2; over 2 windows
    assert parts["mse"].item() == pytest.approx(mse)
    assert parts["kld"].item() == pytest.approx(kld)
    assert parts["coeff"].item() == pytest.approx(4.0)
    assert loss.item() == pytest.approx(mse + 0.1 * kld + 0.5 * 4.0)
    _, parts = vae.loss(windows, mu, logvar, mu)  # no 3DMM targets: no 3DMM term
    assert set(parts) == {"mse", "kld"}


class Echo(nn.Module):
    """A denoiser that returns its noisy input."""

    def forward(self, x, time, cond):
        return x


def test_diffusion_loss_against_hand_computation():
    # one linear step: beta = 0.1, so x_t = sqrt(.9) x0 + sqrt(.1) noise; the echo denoiser predicts x_t
    # (clamped to [-1, 1]); the VAE decoder is the identity, so the decoded MSE is the latent MSE
    cfg = BeLFusionConfig(vae=VAEConfig(hidden=2, latent=2, decoder_mlp=[2]), steps=1, schedule="linear",
                          hidden=4, layers=2, time_channels=2, k=2, l1_weight=10.0, mse_weight=10.0)
    model = BeLFusion(cfg, FRAMES)
    model.denoiser = Echo()
    model.vae.decode = lambda z: z[:, None, :]
    a, b = math.sqrt(0.9), math.sqrt(0.1)
    clean = torch.tensor([[0.5, -0.5]])
    noise = torch.tensor([[[1.0, 0.0], [0.0, -2.0]]])
    loss, parts = model.diffusion_loss(clean, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), noise)
    k0 = (0.5 * a + b, -0.5 * a)  # x_t of the first draw
    k1 = (0.5 * a, max(-0.5 * a - 2 * b, -1.0))  # the second, clamped
    l1 = min((abs(k0[0] - 0.5) + abs(k0[1] + 0.5)) / 2, (abs(k1[0] - 0.5) + abs(k1[1] + 0.5)) / 2)
    mse = min(((k0[0] - 0.5) ** 2 + (k0[1] + 0.5) ** 2) / 2, ((k1[0] - 0.5) ** 2 + (k1[1] + 0.5) ** 2) / 2)
    assert parts["l1_latent"].item() == pytest.approx(l1, rel=1e-5)
    assert parts["mse_decoded"].item() == pytest.approx(mse, rel=1e-5)
    assert loss.item() == pytest.approx(10 * l1 + 10 * mse, rel=1e-5)


def test_best_of_k_takes_each_minimum_separately():
    cfg = BeLFusionConfig(vae=VAEConfig(hidden=2, latent=2, decoder_mlp=[2]), steps=1, schedule="linear",
                          hidden=4, layers=2, time_channels=2, k=2, clip_denoised=False)
    model = BeLFusion(cfg, FRAMES)
    model.denoiser = Echo()
    model.vae.decode = lambda z: z[:, None, :]
    clean = torch.zeros(1, 2)
    # draw 0: latent error (0.9, 0.9) -> L1 0.9, MSE 0.81; draw 1: (2, 0) -> L1 1.0, MSE 2.0 ... scaled
    b = math.sqrt(0.1)
    noise = torch.tensor([[[0.9, 0.9], [1.6, 0.0]]]) / b
    _, parts = model.diffusion_loss(clean, torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), noise)
    assert parts["l1_latent"].item() == pytest.approx(0.8)  # draw 1: (1.6 + 0) / 2
    assert parts["mse_decoded"].item() == pytest.approx(0.81)  # draw 0: (0.81 + 0.81) / 2


def test_noise_schedules_against_hand_values():
    # cosine, 2 steps: a(t) = cos((t + 0.008) / 1.008 * pi / 2)^2, a(1) = cos(pi / 2)^2 ~ 0, so the
    # second beta hits the cap 0.999
    bar = [math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 for t in (0.0, 0.5)]
    first = bar[1] / bar[0]
    assert noise_schedule("cosine", 2).tolist() == pytest.approx([first, first * 0.001])
    # the official 10-step schedule (GaussianDiffusion(noise_schedule="cosine", steps=10).alphas_cumprod
    # of baseline_react2023, printed once)
    official = [0.9720927, 0.8987059, 0.7869105, 0.6474782, 0.4938436, 0.3408096, 0.2031215, 0.09404561,
                0.02409172, 2.409172e-05]
    assert noise_schedule("cosine", 10).tolist() == pytest.approx(official, rel=1e-5)
    # linear: betas 1e-4 .. 0.02 scaled by 1000 / steps; 1 step: beta 0.1; 2 steps: 0.05 and 10 (invalid)
    assert noise_schedule("linear", 1).tolist() == pytest.approx([0.9])
    with pytest.raises(ValueError, match="betas outside"):
        noise_schedule("linear", 2)


def test_step_embedding_against_hand_values():
    # dim 4: frequencies 1 and 10000^(-1/2); [cos | sin]; dim 5 adds a zero column
    emb = step_embedding(torch.tensor([0, 1]), 5)
    expected = [[1.0, 1.0, 0.0, 0.0, 0.0], [math.cos(1), math.cos(0.01), math.sin(1), math.sin(0.01), 0.0]]
    assert emb.tolist() == [pytest.approx(row, abs=1e-6) for row in expected]


def test_statistics_normalise_the_training_latents():
    model = BeLFusion(tiny(), FRAMES)
    windows = torch.rand(40, FRAMES, 25)
    model.fit_statistics(windows, chunk=7)
    codes = model.encode(windows).detach()
    assert torch.allclose(model.stat_min, codes.amin(0)) and torch.allclose(model.stat_var, codes.var(0))
    scaled = model.preprocess(codes)
    assert scaled.amin().item() == pytest.approx(-1.0) and scaled.amax().item() == pytest.approx(1.0)
    assert torch.allclose(model.postprocess(scaled), codes, atol=1e-5)


def optimisation_step_reduces(model: nn.Module, batch: dict, seed: int = 3) -> tuple[float, float]:
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(seed)
    before, _ = model.training_loss(batch)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        torch.manual_seed(seed)  # the same step and noise draws
        after, _ = model.training_loss(batch)
    return before.item(), after.item()


@pytest.mark.parametrize("stage", ["vae", "diffusion", "diffusion_features"])
def test_one_optimisation_step_reduces_the_loss(stage):
    batch = speaker_batch(8)
    if stage == "vae":
        model = BehaviouralVAE(tiny().vae, FRAMES).train()
    elif stage == "diffusion":
        model = BeLFusion(tiny(), FRAMES).train()
        model.fit_statistics(batch["speaker"])
    else:
        model = BeLFusion(tiny(condition="features", video_dim=5, audio_dim=3), FRAMES).train()
        batch.update(video=torch.rand(8, FRAMES, 5), audio=torch.rand(8, FRAMES, 3))
    vae_before = [p.clone() for p in (model.vae if stage != "vae" else model).parameters()]
    before, after = optimisation_step_reduces(model, batch)
    assert after < before
    if stage != "vae":  # the behavioural VAE stays frozen (and in eval mode)
        assert all(torch.equal(a, b) for a, b in zip(vae_before, model.vae.parameters()))
        assert not model.vae.training


class Generate(nn.Module):
    def __init__(self, model: BeLFusion):
        super().__init__()
        self.model = model

    def forward(self, speaker: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.model.generate({"speaker": speaker}, noise)


def test_onnx_export_of_generate_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = BeLFusion(tiny(), FRAMES).eval()
    model.fit_statistics(torch.rand(32, FRAMES, 25))
    speaker, noise = torch.rand(2, FRAMES, 25), model.draw_noise(2, 3)
    path = tmp_path / "belfusion.onnx"
    torch.onnx.export(Generate(model), (speaker, noise), str(path), input_names=["speaker", "noise"],
                      output_names=["reactions"], dynamo=False, opset_version=17,
                      dynamic_axes={"speaker": {0: "windows"}, "noise": {0: "windows", 1: "samples"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    speaker, noise = torch.rand(3, FRAMES, 25), model.draw_noise(3, 2)  # other sizes than exported
    out = session.run(None, {"speaker": speaker.numpy(), "noise": noise.numpy()})[0]
    assert out.shape == (3, 2, FRAMES, 25)
    assert torch.allclose(torch.from_numpy(out), model.generate({"speaker": speaker}, noise), atol=1e-5)


def paper(name: str, schema: type):
    cfg = OmegaConf.load(ROOT / "configs" / name)
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), cfg.model)), cfg.data.num_frames


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_configs_have_the_official_parameter_counts():
    # official: AutoencoderRNN_VAE_v2 (config/1_belfusion_vae.yaml) 242,579 parameters, 10,810 of them
    # the 3DMM head; MLPSkipNet of LatentMLPMatcher (config/2_belfusion_ldm.yaml) 12,300,928; the
    # matcher with its VAE 12,543,507 (counted by instantiating the official modules)
    cfg, frames = paper("belfusion_vae_paper.yaml", VAEConfig)
    vae = BehaviouralVAE(cfg, frames)
    assert (frames, count(vae), count(vae.coefficients)) == (50, 242_579, 10_810)
    cfg, frames = paper("belfusion_paper.yaml", BeLFusionConfig)
    model = BeLFusion(cfg, frames)
    assert (frames, cfg.steps, cfg.k, cfg.layers, cfg.hidden) == (50, 10, 10, 10, 1024)
    assert (count(model.denoiser), count(model)) == (12_300_928, 12_543_507)
    assert count(model) - sum(p.numel() for p in model.parameters() if p.requires_grad) == 242_579


def test_bad_settings_are_named():
    for key, value in (("condition", "audio"), ("latent", "z"), ("preprocessing", "scale"),
                       ("schedule", "sigmoid")):
        with pytest.raises(ValueError, match=f"{key} must be one of"):
            BeLFusion(tiny(**{key: value}), FRAMES)
    with pytest.raises(ValueError, match="vae.hidden"):
        BeLFusion(BeLFusionConfig(vae=VAEConfig(hidden=8, latent=4)), FRAMES)
    with pytest.raises(ValueError, match="needs video_dim and audio_dim"):
        BeLFusion(tiny(condition="features"), FRAMES)
    with pytest.raises(ValueError, match="at least 2 layers"):
        BeLFusion(tiny(layers=1), FRAMES)
    model = BeLFusion(tiny(), FRAMES)
    with pytest.raises(ValueError, match=f"windows of {FRAMES} frames, got 7"):
        model.generate({"speaker": torch.rand(1, 7, 25)}, model.draw_noise(1, 1))


def test_stage_two_loads_the_stage_one_vae_and_its_statistics(tmp_path):
    vae = BehaviouralVAE(tiny().vae, FRAMES)
    (tmp_path / "checkpoints" / "best").mkdir(parents=True)
    torch.save({"model": vae.state_dict(), "config": {}}, tmp_path / "checkpoints" / "best" / "state.pt")
    model = BeLFusion(tiny(), FRAMES)
    clips = [torch.rand(20, 25), torch.rand(13, 25)]  # 3 + 2 whole windows of 6 frames
    load_behavioural_vae(model, tmp_path, clips)
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), model.vae.state_dict().values()))
    windows = torch.cat([clips[0][:18].reshape(3, FRAMES, 25), clips[1][:12].reshape(2, FRAMES, 25)])
    assert torch.equal(attribute_windows(clips, FRAMES), windows)
    assert torch.allclose(model.stat_max, model.encode(windows).amax(0))


def test_stage_two_names_a_bad_stage_one_checkpoint(tmp_path):
    model = BeLFusion(tiny(), FRAMES)
    clips = [torch.rand(12, 25)]
    with pytest.raises(ConfigError, match="model.vae_checkpoint: not set"):
        load_behavioural_vae(model, "", clips)
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        load_behavioural_vae(model, tmp_path / "nothing", clips)
    torch.save({"model": {"weight": torch.zeros(1)}, "config": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: not a BeLFusion stage-1"):
        load_behavioural_vae(model, tmp_path / "other.pt", clips)
    wide = BehaviouralVAE(VAEConfig(hidden=8, latent=8, decoder_mlp=[16]), FRAMES)
    torch.save({"model": wide.state_dict(), "config": {}}, tmp_path / "wide.pt")
    with pytest.raises(CheckpointError, match=r"wide.pt: its VAE does not fit model.vae: readout.0.weight"):
        load_behavioural_vae(model, tmp_path / "wide.pt", clips)
    with pytest.raises(ValueError, match="no clip holds a whole window of 6 frames"):
        attribute_windows([torch.rand(5, 25)], FRAMES)


def test_validation_loss_is_fixed_and_leaves_the_global_generator_alone():
    model = BeLFusion(tiny(), FRAMES).eval()
    vae = BehaviouralVAE(tiny().vae, FRAMES).eval()  # eval: z is the posterior mean, nothing drawn
    batch = speaker_batch(4)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    first, _ = model.training_loss(batch)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, model.training_loss(batch)[0])
    assert torch.equal(vae.training_loss(batch)[0], vae.training_loss(batch)[0])
    assert torch.equal(torch.get_rng_state(), state)
