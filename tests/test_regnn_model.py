"""REGNN model: exact invertibility and Lipschitz bounds of the motor processor, log-determinant,
edge graph, shapes and gradients through the whole model, sampling."""

from pathlib import Path

import pytest
import torch
from helpers.regnn_data import seeded_one_thread  # noqa: F401 - autouse

from react.reaction.contract import sample
from react.reaction.models.cognitive import CognitiveProcessor
from react.reaction.models.motor import LipschitzGraphLayer, MotorProcessor, edge_norm_bound
from react.reaction.models.mult import (
    Dropout,
    PerceptualProcessor,
    attend,
    dropout,
    dropped_positions,
    geometric,
    sinusoidal_positions,
)
from react.reaction.models.regnn import REGNN, CognitiveConfig, ModelConfig, MotorConfig, PerceptualConfig

FRAMES = 10
ROOT = Path(__file__).resolve().parents[1]


def random_edges(batch: int, channels: int = 4, nodes: int = 25) -> torch.Tensor:
    series = torch.randn(batch, nodes, FRAMES)
    return CognitiveProcessor(8, FRAMES, nodes, edge_dim=channels).edges(series).detach()


def strong_motor(layers: int = 3, coeff: float = 0.9, **kw) -> MotorProcessor:
    """A motor processor with large weights, so that the Lipschitz scaling is active."""
    motor = MotorProcessor(FRAMES, 25, layers, hidden=16, edge_dim=4, coeff=coeff, **kw)
    with torch.no_grad():
        for p in motor.parameters():
            p.add_(torch.randn_like(p) * 0.5).mul_(3.0)
    return motor


def test_edge_norm_bound_is_an_upper_bound():
    edges = torch.rand(6, 3, 25, 25)
    exact = torch.linalg.matrix_norm(edges, ord=2)
    assert (edge_norm_bound(edges) >= exact - 1e-5).all()


@pytest.mark.parametrize("activation", ["elu", "relu"])
def test_layer_respects_lipschitz_bound(activation):
    layer = strong_motor(layers=1, coeff=0.7, activation=activation).blocks[0]
    edges = random_edges(64)
    assert (layer.lipschitz_bound(edges) > 0.7).all()  # the unscaled branch would exceed the bound
    mixing = layer.mixing(edges)
    x1, x2 = torch.randn(64, 25, FRAMES) * 3, torch.randn(64, 25, FRAMES) * 3
    ratio = (layer(x1, mixing) - layer(x2, mixing)).flatten(1).norm(dim=1) / (x1 - x2).flatten(1).norm(dim=1)
    assert ratio.max() <= 0.7
    # Largest singular value of the Jacobian at a point, by power iteration with autograd.
    x = torch.randn(1, 25, FRAMES, requires_grad=True)
    out = layer(x, mixing[:1])
    v = torch.randn_like(x)
    for _ in range(50):
        u = torch.autograd.functional.jvp(lambda t: layer(t, mixing[:1]), x, v)[1]
        v = torch.autograd.grad(out, x, u, retain_graph=True)[0]
        v = v / v.norm()
    sigma = torch.autograd.functional.jvp(lambda t: layer(t, mixing[:1]), x, v)[1].norm()
    assert 0 < sigma <= 0.7 + 1e-5


def test_invalid_layer_settings():
    with pytest.raises(ValueError, match="activation"):
        LipschitzGraphLayer(FRAMES, 8, 4, activation="tanh")
    with pytest.raises(ValueError, match="coefficient"):
        LipschitzGraphLayer(FRAMES, 8, 4, coeff=1.0)


@pytest.mark.parametrize("actnorm", [True, False])
def test_motor_inverse_reconstructs_input(actnorm):
    motor = strong_motor(actnorm=actnorm)
    edges = random_edges(8)
    x = torch.rand(8, 25, FRAMES)
    z, _ = motor(x, edges)
    assert (z - x).abs().max() > 0.1  # the map is far from the identity
    restored = motor.inverse(z, edges, iters=200, tol=1e-7)
    assert (restored - x).abs().max() < 1e-4


def test_logdet_estimate_matches_exact_determinant():
    motor = strong_motor(layers=2, coeff=0.5)
    with torch.no_grad():
        motor.norms[0].log_scale.fill_(0.1)
    edges = random_edges(1)
    x = torch.rand(1, 25, FRAMES)
    def flat_motor(t: torch.Tensor) -> torch.Tensor:
        return motor(t.view(1, 25, FRAMES), edges)[0].flatten()

    jac = torch.autograd.functional.jacobian(flat_motor, x.flatten())
    exact = torch.linalg.slogdet(jac)[1]
    probes = 3000  # the batch holds independent Hutchinson probes of the same point
    _, est = motor(x.expand(probes, -1, -1), edges.expand(probes, -1, -1, -1), logdet_terms=12)
    assert est.mean().item() == pytest.approx(exact.item(), abs=4 * est.std().item() / probes**0.5 + 0.02)
    assert 25 * FRAMES * 0.1 < exact.item()  # the ActNorm term alone is 250 * 0.1


def test_cognitive_edges_are_sparse_and_normalised():
    cognitive = CognitiveProcessor(16, FRAMES, nodes=25, edge_dim=8, neighbours=6)
    series, edges = cognitive(torch.randn(3, FRAMES, 16))
    assert series.shape == (3, 25, FRAMES) and edges.shape == (3, 8, 25, 25)
    assert (edges >= 0).all() and ((edges > 0).sum(-1) <= 7).all()
    assert (torch.diagonal(edges, dim1=-2, dim2=-1) > 0).all()  # every node keeps itself
    torch.testing.assert_close(edges.sum(-2), torch.ones(3, 8, 25))


def test_perceptual_checks_inputs():
    mult = PerceptualProcessor(12, 6, dim=8, heads=2, layers=1, memory_layers=1, out_dim=64)
    assert mult(torch.randn(2, FRAMES, 12), torch.randn(2, FRAMES, 6)).shape == (2, FRAMES, 64)
    with pytest.raises(ValueError, match="feature dims"):
        mult(torch.randn(2, FRAMES, 12), torch.randn(2, FRAMES, 7))
    with pytest.raises(ValueError, match="share"):
        mult(torch.randn(2, FRAMES, 12), torch.randn(2, FRAMES + 1, 6))


def stock_perceptual(mult: PerceptualProcessor, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """The perceptual processor (eval) in its stock formulation: 1x1 convolutions over channels-first
    inputs and ``nn.MultiheadAttention``, which :func:`react.reaction.models.mult.attend` replaces."""
    pos = sinusoidal_positions(video.shape[1], mult.proj_v.out_channels, video.device)
    v = mult.scale * mult.proj_v(video.transpose(1, 2)).transpose(1, 2) + pos
    a = mult.scale * mult.proj_a(audio.transpose(1, 2)).transpose(1, 2) + pos

    def block(b: torch.nn.Module, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = b.norm_q(x)
        kv = q if b.norm_kv is None else b.norm_kv(context)
        x = x + b.attn(q, kv, kv, need_weights=False)[0]
        return x + b.ff(b.norm_ff(x))

    h = v
    for b in mult.v_from_a:
        h = block(b, h, a)
    if mult.a_from_v is not None:
        ha = a
        for b in mult.a_from_v:
            ha = block(b, ha, v)
        h = torch.cat([h, ha], -1)
    for b in mult.memory:
        h = block(b, h)
    h = mult.norm(h)
    return mult.head(h) if mult.out is None else mult.out(h + mult.head(h))


@pytest.mark.parametrize("fusion", ["both", "video"])
def test_perceptual_equals_its_stock_formulation(fusion):
    mult = PerceptualProcessor(12, 6, dim=8, heads=2, layers=2, memory_layers=2, fusion=fusion,
                               residual_head=fusion == "video").eval()
    video, audio = torch.randn(3, FRAMES, 12), torch.randn(3, FRAMES, 6)
    torch.testing.assert_close(mult(video, audio), stock_perceptual(mult, video, audio), atol=1e-5, rtol=1e-5)


def test_attend_refuses_the_layouts_it_does_not_compute():
    x = torch.randn(2, FRAMES, 8)
    for kwargs in ({"add_bias_kv": True}, {"add_zero_attn": True}, {"bias": False}, {"kdim": 4, "vdim": 4}):
        with pytest.raises(ValueError, match="not supported"):
            attend(torch.nn.MultiheadAttention(8, 2, batch_first=True, **kwargs), x)


def test_dropped_positions_are_independent_bernoulli():
    n, p = 400_000, 0.1
    state = torch.get_rng_state()
    expected = torch.empty(1000, dtype=torch.float64).geometric_(p)
    torch.set_rng_state(state)
    assert torch.equal(geometric(1000, p), expected)  # the same draws as Tensor.geometric_
    positions = dropped_positions(n, p)
    assert positions.dtype == torch.int64 and (positions.diff() > 0).all()
    assert positions.min() >= 0 and positions.max() < n
    dropped = torch.zeros(n).index_fill_(0, positions, 1)
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.mean().item() - p) < 5 * sigma
    both = (dropped[1:] * dropped[:-1]).mean().item()  # neighbours dropped together: p^2
    assert abs(both - p * p) < 5 * (p * p / n) ** 0.5
    assert abs(dropped[: n // 2].mean().item() - dropped[n // 2:].mean().item()) < 10 * sigma
    assert dropped_positions(0, p).numel() == 0 and (dropped_positions(12, 0.25) < 12).all()
    drop = Dropout(p)
    x = torch.randn(64, 50, requires_grad=True)
    out = drop(x.t())  # a non-contiguous input
    assert out.shape == (50, 64)
    assert ((out == 0) | torch.isclose(out, x.t() / (1 - p))).all() and (out == 0).any()
    out.sum().backward()  # the gradient is the mask
    torch.testing.assert_close(x.grad, torch.where(out.t() == 0, 0.0, 1 / (1 - p)))
    assert drop.eval()(x) is x
    with pytest.raises(ValueError):  # as nn.functional.dropout
        dropout(x, -0.1)


def tiny_model(**motor) -> REGNN:
    cfg = ModelConfig(perceptual=PerceptualConfig(video_dim=12, audio_dim=6, dim=8, heads=2, layers=1,
                                                  memory_layers=1),
                      cognitive=CognitiveConfig(mode="indirect", hidden=4, attn_dim=4),
                      motor=MotorConfig(layers=2, hidden=8, **motor))
    return REGNN(cfg, FRAMES)


def test_whole_model_shapes_and_gradients():
    model = tiny_model(logdet_terms=2)
    video, audio = torch.randn(3, FRAMES, 12), torch.randn(3, FRAMES, 6)
    reactions = torch.rand(3, 4, FRAMES, 25)
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    out = model(video, audio, reactions, mask)
    assert out["centre"].shape == (3, 25, FRAMES) and out["edges"].shape == (3, 8, 25, 25)
    assert out["decoded"].shape == (3, FRAMES, 25)
    assert out["latent"].shape == (3, 4, 25, FRAMES) and out["logdet"].shape == (3, 4)
    assert (out["latent"][~mask] == 0).all() and (out["latent"][mask].abs().sum((1, 2)) > 0).all()
    (out["decoded"].sum() + out["latent"].sum() + out["logdet"].sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    with pytest.raises(ValueError, match="windows of 10 frames"):
        model(torch.randn(1, FRAMES + 1, 12), torch.randn(1, FRAMES + 1, 6))


def test_sample_gives_distinct_reproducible_reactions():
    model = tiny_model().eval()
    video, audio = torch.randn(2, FRAMES, 12), torch.randn(2, FRAMES, 6)
    first = sample(model, {"video": video, "audio": audio}, 5, torch.Generator().manual_seed(1))
    again = sample(model, {"video": video, "audio": audio}, 5, torch.Generator().manual_seed(1))
    assert first.shape == (2, 5, FRAMES, 25) and torch.equal(first, again)
    assert (first[:, 1:] - first[:, :1]).abs().flatten(2).amax(-1).min() > 1e-3  # samples differ
    # The motor inverse of the sample maps back onto centre + noise: forward(sample) == latent.
    centre, edges = model.condition(video, audio)
    latent, _ = model.motor(first[:, 0].transpose(1, 2), edges)
    noise = (latent - centre) / model.noise_std
    assert noise.std().item() == pytest.approx(1.0, abs=0.1)


def official_model(frames: int = FRAMES, video_dim: int = 12, audio_dim: int = 8, **cognitive) -> REGNN:
    """The official replica's options (configs/regnn_official.yaml) at a small width."""
    perceptual = PerceptualConfig(video_dim=video_dim, audio_dim=audio_dim, dim=8, heads=2, layers=1,
                                  memory_layers=1, attn_dropout=0.0, fusion="video", input_dropout=0.25,
                                  residual_head=True, head_dropout=0.0, positions="fairseq",
                                  stack_embedding=True, shared_kv_norm=True, project_audio=False,
                                  xavier_init=True)
    cognitive = CognitiveConfig(**{"activation": "gelu", "neighbours": 5, "attn_dim": frames,
                                   "edge_mlp": True, "edge_graph": "summed", "edge_norm": "product",
                                   **cognitive})
    motor = MotorConfig(layers=2, residual="attention", actnorm_data_init=True, inverse_iters=5,
                        inverse_tol=1e-3, inverse_stop="sample", train_inverse_iters=5)
    cfg = ModelConfig(perceptual=perceptual, cognitive=cognitive, motor=motor, noise_max=0.06**0.5)
    return REGNN(cfg, frames)


def test_official_parameter_count():
    from react.reaction.task import Task
    from react.tasks import load_task_config
    from react.tasks.protocol import RunPaths

    cfg = load_task_config(ROOT / "configs" / "regnn_official.yaml", [])
    model = Task(cfg, RunPaths(ROOT)).build_model()
    count = sum(p.numel() for p in model.parameters())
    # the official 2,202,571 less what it never uses: proj_a (128 x 128) and the motor's l/log_s/u
    assert count == 2_202_571 - 128 * 128 - (50 * 50 + 50 + 50 * 50) == 2_181_137
    assert sum(p.numel() for p in model.motor.parameters()) == 2 * (50 * 100 + 100 + 8 + 50)


def test_official_edges_keep_each_rows_own_top_k():
    cognitive = official_model().cognitive
    series = torch.randn(3, 25, FRAMES)
    x = cognitive.edges.pre(series)
    scores = torch.randn(3, 8, 25, 25)
    keep = cognitive.edges.keep_mask(scores)
    assert keep.shape == (3, 1, 25, 25) and (keep.sum(-1) <= 6).all() and (keep.sum(-1) >= 5).all()
    top = torch.softmax(scores, -1).sum(1).topk(5, -1).indices  # per row, not the union of all rows
    assert keep[:, 0].gather(-1, top).all()
    edges = cognitive.edges(series)
    assert x.shape == series.shape and edges.shape == (3, 8, 25, 25) and (edges >= 0).all()
    # R @ C^T with R row-stochastic and C column-stochastic: all entries sum to the node count
    torch.testing.assert_close(edges.sum((-2, -1)), torch.full((3, 8), 25.0))


def test_official_motor_inverts_to_its_tolerance():
    model = official_model().train()
    x = torch.rand(16, 25, FRAMES)
    fused = model.perceptual(torch.randn(16, FRAMES, 12), torch.randn(16, FRAMES, 8))
    edges = model.cognitive(fused)[1].detach()
    z, _ = model.motor(x, edges)  # the first training batch initialises ActNorm
    norm = model.motor.norms[0]
    assert bool(norm.initialised)
    normed = norm(x)[0]
    torch.testing.assert_close(normed.mean((0, 2)), torch.zeros(25), atol=1e-5, rtol=0)
    torch.testing.assert_close(normed.std((0, 2), unbiased=False), torch.ones(25), atol=1e-3, rtol=0)
    z, _ = model.motor(x, edges)
    assert (z - model.motor.norms[1](model.motor.norms[0](x)[0])[0]).abs().max() > 0.05
    restored = model.motor.inverse(z, edges, iters=5, tol=1e-3)
    assert (restored - x).abs().max() < 1e-3


def test_official_noise_rescaling():
    model = official_model().eval()
    noise = model.draw_noise(7, 3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(noise.abs().amax((0, 2, 3)), torch.full((3,), 0.06**0.5))
    video, audio = torch.randn(7, FRAMES, 12), torch.randn(7, FRAMES, 8)
    small = sample(model, {"video": video, "audio": audio}, 3, torch.Generator().manual_seed(0), scale=0.5)
    large = sample(model, {"video": video, "audio": audio}, 3, torch.Generator().manual_seed(0), scale=2.0)
    centre = sample(model, {"video": video, "audio": audio}, 1, scale=0.0)  # the reaction at the centre
    assert (large - centre).abs().mean() > 3 * (small - centre).abs().mean()


@pytest.mark.parametrize("residual", ["lipschitz", "attention"])
def test_motor_per_window_edges_equal_gathered_edges(residual):
    motor = MotorProcessor(FRAMES, 25, 2, hidden=8, edge_dim=8, residual=residual).eval()
    edges, owner = random_edges(3, channels=8), torch.tensor([0, 0, 2, 1, 2])
    x = torch.randn(5, 25, FRAMES)
    torch.testing.assert_close(motor(x, edges, owner=owner)[0], motor(x, edges[owner])[0])


def test_lipschitz_layer_is_its_formula():
    layer = strong_motor(layers=1).blocks[0]
    edges, x = random_edges(3), torch.randn(3, 25, FRAMES)
    scale = 0.9 / layer.lipschitz_bound(edges).clamp(min=0.9)
    h = torch.nn.functional.elu(x @ layer.U + layer.u)
    expected = torch.stack([torch.einsum("c,cij,jk,ckt->it", layer.mix, edges[b], h[b], layer.V) * scale[b]
                            for b in range(3)])
    torch.testing.assert_close(layer(x, layer.mixing(edges)), expected, atol=1e-5, rtol=1e-4)
