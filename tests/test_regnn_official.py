"""The official replica computes what the official REGNN code computes: hand-derived cases for the
motor mixing, the bound, the position code, MULT's between-stack processing and the union top-k,
and the official fixed-point loop against the exported generator."""

import math

import pytest
import torch
from helpers.regnn_data import seeded_one_thread  # noqa: F401 - autouse fixture
from torch.nn import functional as F

from react.reaction.deploy.export import _onnx_export
from react.reaction.deploy.graph import ReactionGenerator
from react.reaction.models.cognitive import EdgeLayer
from react.reaction.models.motor import AttentionGraphLayer
from react.reaction.models.mult import PerceptualProcessor, fairseq_positions
from tests.test_regnn_model import FRAMES, official_model


def test_motor_mixing_renormalises_rows_and_channel_weights():
    layer = AttentionGraphLayer(frames=2, edge_dim=2)
    with torch.no_grad():
        layer.qk.weight.zero_()  # q = k = bias: uniform attention, and L = ||I||_2 + 5 = 6
        layer.qk.bias.copy_(torch.tensor([0.3, -0.2, 0.3, -0.2]))
        layer.w.copy_(torch.tensor([1.0, 3.0]))  # mixed with w / sum(w) = (1/4, 3/4)
    edges = torch.tensor([[[1.0, 1, 0], [0, 1, 0], [0, 1, 1]], [[2.0, 2, 2], [1, 1, 1], [5, 5, 5]]])[None]
    # rows of (A * E_c) re-normalised: channel 0 [.5 .5 0] [0 1 0] [0 .5 .5], channel 1 all 1/3
    mixed = torch.tensor([[0.375, 0.375, 0.25], [0.25, 0.5, 0.25], [0.25, 0.375, 0.375]])
    x = torch.tensor([[[0.0, 1.0], [-1.0, 2.0], [0.5, -0.5]]])
    h = torch.sigmoid(F.elu(x))
    assert layer.bound().item() == pytest.approx(6.0)
    torch.testing.assert_close(layer(x, layer.mixing(edges)), mixed @ h / 6)
    torch.testing.assert_close(layer(torch.zeros(1, 3, 2), edges), torch.full((1, 3, 2), 0.5 / 6))


def test_motor_bound_official_orientation_no_gradient():
    layer = AttentionGraphLayer(frames=2, edge_dim=1)
    with torch.no_grad():  # rows of the (out x in) weight: W_q = [[1, 1], [0, 0]], W_k = [[1, -1], [0, 0]]
        layer.qk.weight.copy_(torch.tensor([[1.0, 1], [0, 0], [1, -1], [0, 0]]))
    # W_q W_k^T = 0, so L = ||I||_2 + 5 = 6 (W_q^T W_k would give ||I + sqrt(2) [[1, -1], [1, -1]]|| + 5)
    assert layer.bound().item() == pytest.approx(6.0) and not layer.bound().requires_grad
    with torch.no_grad():
        layer.qk.weight.copy_(torch.tensor([[1.0, 0], [0, 0], [1, 0], [0, 0]]))
    assert layer.bound().item() == pytest.approx(1 + 2 / math.sqrt(2) + 5)


def test_fairseq_positions_hand_computed():
    x = torch.tensor([[[0.3, 1, 1, 1], [0.0, 1, 1, 1], [-2.0, 0, 0, 0]]])  # the middle frame is "padding"
    # dim 4: half 2, frequencies 10000^(-i / (2 - 1)) = 1, 1e-4; positions 1, 2, 3
    expected = torch.tensor([[math.sin(1), math.sin(1e-4), math.cos(1), math.cos(1e-4)],
                             [0.0, 0, 0, 0],
                             [math.sin(3), math.sin(3e-4), math.cos(3), math.cos(3e-4)]])
    torch.testing.assert_close(fairseq_positions(x)[0], expected)


def mult_reference(p: PerceptualProcessor, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """MULT's forward (models/MULTModel.py, multimodel/transformer.py) written out, eval mode."""
    def embed(x):
        return math.sqrt(x.shape[-1]) * x + fairseq_positions(x)

    def layer(block, x, kv=None):
        q = block.norm_q(x)
        kv = q if kv is None else block.norm_q(kv)  # layer_norms[0] for queries, keys and values
        x = x + block.attn(q, kv, kv, need_weights=False)[0]
        return x + block.ff[3](F.relu(block.ff[0](block.norm_ff(x))))

    x, a = embed(video @ p.proj_v.weight[:, :, 0].T), embed(audio)
    for block in p.v_from_a:
        x = layer(block, x, a)
    x = embed(p.cross_norm(x))  # the cross stack's final LayerNorm, then the self stack's embedding
    for block in p.memory:
        x = layer(block, x)
    x = p.norm(x)
    return p.out(x + p.head[3](F.relu(p.head[0](x))))


def test_between_stacks_mult_processing():
    p = official_model().perceptual.eval()
    assert p.proj_a is None and p.v_from_a[0].norm_kv is None
    video, audio = torch.randn(3, FRAMES, 12), torch.randn(3, FRAMES, 8)
    with torch.no_grad():
        torch.testing.assert_close(p(video, audio), mult_reference(p, video, audio), atol=1e-5, rtol=1e-5)


def test_shared_topk_is_the_official_union_loop():
    layer = EdgeLayer(FRAMES, edge_dim=3, neighbours=2, attn_dim=4, mlp=True, graph="summed",
                      norm="product", shared_topk=True)
    scores = torch.randn(2, 3, 6, 6)
    index = torch.softmax(scores, -1).sum(1).topk(2, -1).indices
    expected = torch.zeros(2, 6, 6)
    for b in range(2):  # EdgeLayer.clip of models/cognitive.py
        mask = torch.eye(6)
        for j in range(6):
            for ind_ in index[b]:
                mask[j][ind_] = 1.0
        expected[b] = mask
    keep = layer.keep_mask(scores)
    assert keep.shape == (2, 1, 6, 6) and torch.equal(keep[:, 0].float(), expected)
    assert (keep.sum(-1) > 3).any()  # wider than any one row's top-2 plus itself


def official_inverse(model, latent: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """LipschitzGraph.inverse of the official code: per layer, last first, x = y; at most 5 times
    f = f(x), stop after the update when no element moved by more than 1e-3; then ActNorm inverse."""
    y, used = latent, []
    for block, norm in zip(reversed(model.motor.blocks), reversed(model.motor.norms)):
        x, steps = y, 0
        for _ in range(5):
            steps += 1
            fx = block(x, edges)
            sub = (torch.abs(x - (y - fx)) > 1e-3).sum()
            x = y - fx
            if sub == 0:
                break
        used.append(steps)
        y = norm.inverse(x)
    return y, used


def test_official_fixed_point_loop_equals_the_exported_generator(tmp_path):
    import onnxruntime

    model = official_model().eval()
    with torch.no_grad():
        for norm in model.motor.norms:
            norm.log_scale.uniform_(-1, 1)
            norm.shift.normal_()
        for block in model.motor.blocks:
            block.qk.weight.mul_(3)
    windows, samples = 4, 3
    video, audio = torch.randn(windows, FRAMES, 12), torch.randn(windows, FRAMES, 8)
    noise = model.draw_noise(windows, samples, torch.Generator().manual_seed(3))
    with torch.no_grad():
        centre, edges = model.condition(video, audio)
        expected, counts = [], []
        for s in range(samples):  # the official test inverts one clip's windows per call
            out, used = official_inverse(model, centre + noise[:, s], edges)
            expected.append(out.transpose(1, 2))
            counts += used
    expected = torch.stack(expected, 1)
    assert min(counts) < 5  # the early stop takes effect
    generator = ReactionGenerator(model, 5, 1e-3)
    with torch.no_grad():
        torch.testing.assert_close(generator(video, audio, noise), expected, atol=1e-6, rtol=0)
    target = tmp_path / "generator.onnx"
    net = {"inputs": {"video": ["windows", FRAMES, 12], "audio": ["windows", FRAMES, 8],
                      "noise": ["windows", "samples", 25, FRAMES]},
           "outputs": {"reactions": ["windows", "samples", FRAMES, 25]}}
    _onnx_export(generator, (video[:2], audio[:2], noise[:2, :2]), net, target, 17)  # other sizes than used
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = session.run(None, {"video": video.numpy(), "audio": audio.numpy(), "noise": noise.numpy()})[0]
    assert abs(got - expected.numpy()).max() < 1e-5


def official_loss(centre, latent, lengths, threshold):
    """AllThreMseLoss(cal_type='min') + MidLoss('L2') of the release's utils/loss.py, written out:
    ``centre`` (B, N, T) per window, ``latent`` (sum lengths, N, T) the mapped reactions in order."""
    preds = torch.repeat_interleave(centre, torch.tensor(lengths), dim=0)
    all_mse = F.mse_loss(preds, latent, reduction="none").mean(dim=(1, 2))
    mse = torch.stack([seq.min() for seq in torch.split(all_mse, lengths)])
    if threshold is not None:
        mse = torch.where(mse > threshold, mse, torch.tensor([0.0]))
    means = torch.stack([seq.mean(0) for seq in torch.split(latent, lengths)])
    mid = F.mse_loss(torch.repeat_interleave(means, torch.tensor(lengths), dim=0), latent)
    return mse.mean() + mid


@pytest.mark.parametrize("gated", [False, True])
def test_training_step_loss_and_gradients_are_the_official_ones(gated):
    from react.reaction.losses import LossConfig, regnn_losses

    model = official_model().train()
    lengths = [3, 1, 2]
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=torch.bool)
    video, audio = torch.randn(3, FRAMES, 12), torch.randn(3, FRAMES, 8)
    reactions = torch.rand(3, 3, FRAMES, 25)
    model(video, audio, reactions, mask, decode=False)  # the first batch sets ActNorm (no gradient)
    torch.manual_seed(1)
    out = model(video, audio, reactions, mask, decode=False)
    owner, slot = mask.nonzero(as_tuple=True)
    mse = (out["latent"] - out["centre"][:, None]).pow(2).flatten(2).mean(-1)
    nearest = mse.masked_fill(~mask, 9).amin(1)
    tau = torch.tensor([float(nearest.sort().values[1])]) if gated else torch.zeros(1)  # gates two windows
    params = [p for p in model.parameters() if p.requires_grad]
    loss, _ = regnn_losses(out, reactions, mask, LossConfig(kind="official", dist=1.0, mid=1.0), "all", tau)
    ours = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    expected = official_loss(out["centre"], out["latent"][owner, slot], lengths, tau if gated else None)
    theirs = torch.autograd.grad(expected, params, allow_unused=True)
    assert abs(loss.item() - expected.item()) < 1e-6
    checked = 0
    for a, b in zip(ours, theirs):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
            checked += 1
    assert checked > 20 and sum(g.abs().sum() for g in ours if g is not None) > 0


def test_mult_initialisation_and_separate_key_value_dropout(monkeypatch):
    p = official_model().perceptual.train()
    block = p.v_from_a[0]
    assert not block.ff[0].bias.any() and not block.attn.out_proj.bias.any()
    bound = math.sqrt(6 / (8 + 8))  # xavier-uniform of the 8 x 8 output projection
    assert block.attn.out_proj.weight.abs().max() <= bound
    seen = []
    original = type(block).forward

    def spy(self, x, context=None, values=None):
        seen.append((context, values))
        return original(self, x, context, values)

    monkeypatch.setattr(type(block), "forward", spy)
    p(torch.randn(2, FRAMES, 12), torch.randn(2, FRAMES, 8))
    keys, values = seen[0]  # the cross-modal block: two dropped copies of the same embedded audio
    assert keys.shape == values.shape and not torch.equal(keys, values)
    kept = (keys != 0) & (values != 0)
    torch.testing.assert_close(keys[kept], values[kept])  # the same values where neither was dropped
    assert ((keys == 0) != (values == 0)).any()  # other masks


def test_generation_stamp_covers_settings_that_are_not_weights():
    """Cached predictions are reused only for the same model settings: the union top-k and the
    per-sample stop change the reactions without changing a single weight."""
    from types import SimpleNamespace

    from react.reaction.generation import settings_stamp

    torch.manual_seed(0)
    per_row, union = official_model(), official_model(shared_topk=True)
    union.load_state_dict(per_row.state_dict())
    windows = SimpleNamespace(num_frames=FRAMES, stride=FRAMES // 2)
    a, b = (settings_stamp(m, windows, samples=10, seed=0) for m in (per_row, union))
    assert a["weights_sha1"] == b["weights_sha1"] and a["model_sha1"] != b["model_sha1"]
    assert settings_stamp(per_row, windows, samples=10, seed=0) == a
