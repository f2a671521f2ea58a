"""Speech-emotion models: log-mel front end, padding masks, partial unfreezing, SSL weight loading,
ONNX parity."""

import logging

import numpy as np
import onnx
import pytest
import torch

from react.models.ser import SSL_TRAINING_FIELDS, AttentionPooling, Frontend, LogMel, SERModel, SERModelConfig
from react.models.ser_descriptors import LLD_NAMES, N_FUNCTIONALS, functionals
from react.models.ssl_audio import FAMILIES
from react.pretrained import load_ssl_weights, pretrained_ssl_encoder, ssl_architecture
from react.ser.export import export_onnx

SR = 16000


def _model(**kw) -> SERModel:
    """A model as the task builds it: the SSL architecture resolved first (no weights loaded)."""
    torch.manual_seed(0)
    cfg = SERModelConfig(**kw)
    if cfg.encoder in FAMILIES:
        cfg.ssl_arch = ssl_architecture(cfg.encoder, cfg.weights, cfg.random_init, **SSL_TRAINING_FIELDS,
                                        **cfg.random_init_config)
    return SERModel(cfg, n_classes=4, sample_rate=SR)


def test_logmel_matches_stft_power():
    logmel = LogMel(SR, n_mels=20)
    wave = torch.randn(1, 4000)
    conv = torch.nn.functional.conv1d(wave.unsqueeze(1), logmel.power.basis, stride=logmel.hop)
    real, imag = conv.chunk(2, dim=1)
    stft = torch.stft(wave, logmel.n_fft, logmel.hop, window=torch.hann_window(logmel.n_fft), center=False,
                      return_complex=True)
    assert torch.allclose(real.pow(2) + imag.pow(2), stft.abs().pow(2), rtol=1e-3, atol=1e-3)
    feats, _, fmask = Frontend(SR, n_mels=20)(wave, torch.ones_like(wave, dtype=torch.bool))
    assert feats.shape[1] == fmask.shape[1] and int(fmask.sum()) == (4000 - 400) // 160 + 1
    valid = feats[0][fmask[0]]
    assert abs(valid.mean().item()) < 1e-4 and valid.std(unbiased=False).item() == pytest.approx(1, abs=1e-3)


def test_attention_pooling_ignores_padding():
    pool = AttentionPooling(8, heads=2)
    x = torch.randn(2, 10, 8)
    mask = torch.arange(10).unsqueeze(0) < torch.tensor([[10], [6]])
    out = pool(x, mask)
    x2 = x.clone()
    x2[1, 6:] = 1e3  # garbage in the padding
    assert out.shape == (2, 16)
    assert torch.allclose(pool(x2, mask), out)
    assert torch.allclose(pool(x[1:, :6], mask[1:, :6]), out[1:], atol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(encoder="logmel_cnn", aux_sex_weight=0.5),
    dict(encoder="logmel_tdnn", normalization="population", context_layers=2, pool_std=True, pool_heads=2),
    dict(encoder="logmel_tdnn", normalization="population", descriptors=True, pool_std=True),
    dict(encoder="wav2vec2", random_init=True, spec_branch=True, normalization="population",
         context_layers=1),
    dict(encoder="hubert", random_init=True),
    dict(encoder="wavlm", random_init=True, layer_weighting=False),
])
def test_padded_batch_equals_single_utterances(kw):
    model = _model(**kw).eval()
    a, b = torch.randn(9000) * 0.1, torch.randn(16000) * 0.1
    wave = torch.zeros(2, 16000)
    wave[0, :9000], wave[1] = a, b
    wave[0, 9000:] = 5.0  # padding content must not matter
    mask = torch.arange(16000).unsqueeze(0) < torch.tensor([[9000], [16000]])
    with torch.no_grad():
        batch = model(wave, mask)
        single_a, single_b = model(a[None]), model(b[None])
    assert batch["logits"].shape == (2, 4)
    assert torch.allclose(batch["logits"][0], single_a["logits"][0], atol=1e-5)
    assert torch.allclose(batch["logits"][1], single_b["logits"][0], atol=1e-5)
    assert ("sex_logits" in batch) == (kw.get("aux_sex_weight", 0) > 0)


def _grads(model: SERModel):
    model.train()
    wave = torch.randn(2, 8000) * 0.1
    model(wave, torch.ones_like(wave, dtype=torch.bool))["logits"].pow(2).sum().backward()
    ssl = model.encoder.model
    layer = [any(p.grad is not None and p.grad.abs().sum() > 0 for p in lay.parameters())
             for lay in ssl.encoder.layers]
    feature = any(p.grad is not None for p in ssl.feature_extractor.parameters())
    return layer, feature


def test_partial_unfreezing_trains_only_the_last_layers():
    model = _model(encoder="wav2vec2", random_init=True, random_init_config={"num_hidden_layers": 3},
                   encoder_mode="last_n", unfreeze_last_n=1)
    layers, feature = _grads(model)
    assert layers == [False, False, True] and not feature
    assert model.encoder.model.encoder.layer_norm.weight.grad.abs().sum() > 0  # follows the last layer
    assert model.encoder.layer_logits.grad.abs().sum() > 0
    assert all(p.grad.abs().sum() > 0 for p in model.head.parameters())
    assert not model.encoder.model.feature_extractor.training  # frozen parts stay in eval mode
    layers = model.encoder.model.encoder.layers
    assert not layers[0].training and layers[2].training

    full = _model(encoder="hubert", random_init=True, encoder_mode="full")
    layers, feature = _grads(full)
    assert layers == [True, True] and feature
    unused = [n for n, p in full.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []  # DDP needs every trainable weight used
    frozen = _model(encoder="wavlm", random_init=True, encoder_mode="frozen")
    layers, feature = _grads(frozen)
    assert layers == [False, False] and not feature
    assert not any(p.requires_grad for p in frozen.encoder.model.parameters())
    assert not frozen.encoder.model.training
    with pytest.raises(ValueError, match="unfreeze_last_n=3 must be in 1..2"):
        _model(encoder="wav2vec2", random_init=True, encoder_mode="last_n", unfreeze_last_n=3)


def test_ssl_encoder_loads_local_weights_and_rejects_bad_paths(tmp_path):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("react.weights").addHandler(handler)
    try:
        tiny = pretrained_ssl_encoder("hubert", None, True)
    finally:
        logging.getLogger("react.weights").removeHandler(handler)
    assert [r.getMessage().count("RANDOMLY INITIALISED") for r in records] == [1]  # said once
    tiny.save_pretrained(tmp_path / "hubert")
    loaded = pretrained_ssl_encoder("hubert", tmp_path / "hubert", False)
    assert type(loaded).__name__ == "HubertModel"
    for key, value in tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(FileNotFoundError, match="no weights path given"):
        pretrained_ssl_encoder("wavlm", None, False)
    with pytest.raises(FileNotFoundError, match="not a local HF-format model directory"):
        pretrained_ssl_encoder("wavlm", tmp_path / "nothing", False)
    with pytest.raises(ValueError, match="holds a 'hubert' model, expected 'wavlm'"):
        pretrained_ssl_encoder("wavlm", tmp_path / "hubert", False)
    with pytest.raises(ValueError, match="unknown SSL encoder family 'bert'"):
        pretrained_ssl_encoder("bert", None, True)
    model = _model(encoder="hubert", weights=str(tmp_path / "hubert"))
    load_ssl_weights(model.encoder.model, "hubert", tmp_path / "hubert")
    assert torch.equal(model.encoder.model.feature_projection.projection.weight,
                       tiny.feature_projection.projection.weight)


def _voice(f0: float, seconds: float, gain: float = 0.1) -> np.ndarray:
    """A harmonic tone at ``f0`` Hz with a falling spectrum (a crude voiced vowel)."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 12))
    return (gain * wave / np.abs(wave).max()).astype(np.float32)


@pytest.mark.parametrize("descriptors", [False, True])
def test_speaker_normalisation_uses_the_given_statistics(descriptors):
    from react.ser.inference import RunningNorm, classify, speaker_norm

    model = _model(encoder="logmel_tdnn", normalization="speaker", cnn_channels=[8, 8],
                   descriptors=descriptors).eval()
    noise = torch.randn(20000).numpy()
    waves = [_voice(140, 0.5) + noise[:8000] * 0.01, _voice(180, 0.75, 0.3) + noise[8000:] * 0.03]
    norm = speaker_norm(model.raw_features, waves)
    ones = [torch.ones(1, w.size, dtype=torch.bool) for w in waves]
    raw = [model.raw_features(torch.from_numpy(w)[None], m) for w, m in zip(waves, ones)]
    frames = torch.cat([feats[weights[..., 0]] for feats, weights in raw])
    assert norm.shape == (2, 64 + len(LLD_NAMES) * descriptors)
    assert torch.allclose(torch.from_numpy(norm[0, :64]), frames[:, :64].mean(0), atol=1e-4)
    assert torch.allclose(torch.from_numpy(norm[1, :64]), frames[:, :64].std(0, unbiased=False), atol=1e-3)
    if descriptors:  # pitch statistics over the voiced frames only
        voiced = torch.cat([feats[0, :, 64][weights[0, :, 64]] for feats, weights in raw])
        assert norm[0, 64] == pytest.approx(float(voiced.mean()), abs=1e-4)
    running = RunningNorm(model.raw_features).update(waves[:1]).update(waves[1:])  # streamed: the same
    assert np.allclose(running.value(), norm, rtol=1e-3, atol=1e-5)  # (HNR of a pure tone is touchy)
    first = torch.from_numpy(waves[0])[None]
    feats, weights, fmask = model.encoder.frontend(first, ones[0], torch.from_numpy(norm)[None])
    expected = (raw[0][0] - torch.from_numpy(norm[0])) / torch.from_numpy(norm[1]) * raw[0][1]
    assert torch.equal(weights, raw[0][1]) and torch.allclose(feats, expected, atol=1e-4)
    # a louder speaker normalised by their own statistics looks like the quiet one
    loud = [w * 10 for w in waves]
    probs = classify(model, waves, norms=[norm] * 2)
    own = speaker_norm(model.raw_features, loud)
    assert np.allclose(classify(model, loud, norms=[own] * 2), probs, atol=1e-4)
    assert not np.allclose(classify(model, loud, norms=[norm] * 2), probs, atol=1e-3)
    # a population model standardises by its fixed training statistics as a speaker model by the given ones
    population = _model(encoder="logmel_tdnn", normalization="population", cnn_channels=[8, 8],
                        descriptors=descriptors).eval()
    population.load_state_dict(model.state_dict(), strict=False)
    population.set_population_norm(norm)
    assert np.allclose(classify(population, waves), probs, atol=1e-5)
    assert torch.equal(population.state_dict()["population_norm"], torch.from_numpy(norm))  # saved with it
    with pytest.raises(ValueError, match="does not normalise by speaker"):
        _model()(torch.randn(1, 4000), norm=torch.zeros(1, 2, 64))
    with pytest.raises(ValueError, match="needs norm: the statistics of the speaker's enrolment"):
        model(torch.randn(1, 4000))
    with pytest.raises(ValueError, match="without normalization=population"):
        model.set_population_norm(norm)
    with pytest.raises(ValueError, match="use a logmel encoder or model.spec_branch"):
        _model(encoder="hubert", random_init=True, normalization="speaker")


@pytest.mark.parametrize("kw", [dict(encoder="logmel_cnn"), dict(encoder="wav2vec2", random_init=True),
                                dict(encoder="logmel_tdnn", normalization="population", context_layers=1,
                                     pool_std=True),
                                dict(encoder="logmel_tdnn", normalization="speaker", descriptors=True)])
def test_onnx_export_matches_pytorch_at_any_length(tmp_path, kw):
    model = _model(**kw).eval()
    target = tmp_path / "ser.onnx"
    worst = export_onnx(model, target, ["a", "b", "c", "d"], SR, check_seconds=(0.6, 1.7))
    assert worst < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    speaker = kw.get("normalization") == "speaker"
    extra = {"inputs": "wave,norm", "protocol": "speaker-adapted"} if speaker else {"protocol": "inductive"}
    assert meta == {"classes": "a,b,c,d", "sample_rate": "16000", **extra}
    dims = onnx.load(str(target)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "samples"]


def test_descriptors_track_pitch_voicing_and_level():
    frontend = Frontend(SR, n_mels=32, descriptors=True)
    lld = {name: 32 + i for i, name in enumerate(LLD_NAMES)}
    for f0 in (110.0, 220.0, 330.0):
        wave = torch.from_numpy(_voice(f0, 0.6))[None]
        feats, weights = frontend.raw(wave, torch.ones_like(wave, dtype=torch.bool))
        inner = slice(5, -5)  # frames whose window lies inside the tone
        assert bool(weights[0, inner, lld["pitch"]].all())  # voiced
        semitones = feats[0, inner, lld["pitch"]]
        assert semitones.median().item() == pytest.approx(12 * np.log2(f0 / 100), abs=0.3)
    louder, _ = frontend.raw(wave * 10, torch.ones_like(wave, dtype=torch.bool))
    gain = (louder - feats)[0, inner, lld["loudness"]]
    assert torch.allclose(gain, torch.full_like(gain, 2 * np.log(10)), atol=1e-3)  # log energy
    noise = torch.randn(1, 9600) * 0.1
    _, weights = frontend.raw(noise, torch.ones_like(noise, dtype=torch.bool))
    assert weights[0, :, lld["pitch"]].float().mean() < 0.1  # noise is not voiced
    feats, weights = frontend.raw(wave, torch.ones_like(wave, dtype=torch.bool))
    stats = functionals(feats[..., 32:], weights[..., 32:])
    assert stats.shape == (1, N_FUNCTIONALS) and torch.isfinite(stats).all()


def test_functionals_by_hand():
    """Column 0 is voiced-only (frame 2 unvoiced), column 1 is on every frame."""
    x = torch.tensor([[1.0, 3.0, 2.0, 6.0]]).view(1, 4, 1).repeat(1, 1, 2)
    w = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]])
    mean, std, delta, slope = functionals(x, w, frame_s=1.0)[0, :8].view(4, 2).unbind(0)
    assert mean.tolist() == pytest.approx([10 / 3, 3.0])
    assert std[0].item() == pytest.approx(np.std([1, 3, 6]), abs=1e-4)
    assert delta.tolist() == pytest.approx([2.0, 7 / 3])  # column 0: only the pair (1, 3) is weighted
    t, v = np.array([0.0, 1.0, 3.0]), np.array([1.0, 3.0, 6.0])
    assert slope[0].item() == pytest.approx(np.polyfit(t, v, 1)[0], abs=1e-3)
    voiced_share, onsets = functionals(x, w, frame_s=1.0)[0, -2:]
    assert voiced_share.item() == pytest.approx(0.75) and onsets.item() == pytest.approx(2 / 4)
