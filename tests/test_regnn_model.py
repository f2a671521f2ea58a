"""REGNN model: exact invertibility and Lipschitz bounds of the motor processor, log-determinant,
edge graph, shapes and gradients through the whole model, sampling."""

import pytest
import torch

from react.models.cognitive import CognitiveProcessor
from react.models.motor import LipschitzGraphLayer, MotorProcessor, edge_norm_bound
from react.models.mult import PerceptualProcessor
from react.models.regnn import REGNN, CognitiveConfig, ModelConfig, MotorConfig, PerceptualConfig

FRAMES = 10


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


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
    first = model.sample(video, audio, 5, torch.Generator().manual_seed(1))
    again = model.sample(video, audio, 5, torch.Generator().manual_seed(1))
    assert first.shape == (2, 5, FRAMES, 25) and torch.equal(first, again)
    assert (first[:, 1:] - first[:, :1]).abs().flatten(2).amax(-1).min() > 1e-3  # samples differ
    # The motor inverse of the sample maps back onto centre + noise: forward(sample) == latent.
    centre, edges = model.condition(video, audio)
    latent, _ = model.motor(first[:, 0].transpose(1, 2), edges)
    noise = (latent - centre) / model.noise_std
    assert noise.std().item() == pytest.approx(1.0, abs=0.1)
