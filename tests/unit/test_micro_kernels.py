"""The micro-benchmark kernels compute what they claim: against librosa/scipy, against the
definitions (top-k, top-p, repetition penalty as in transformers), and round trips (packing).

Torch kernels run on the CPU here and on CUDA where a GPU is present (skipped otherwise)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voxbench.micro import kernels as K

torch = pytest.importorskip("torch")

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
    ),
]


def _t(x: np.ndarray, device: str):  # type: ignore[no-untyped-def]
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def _np(x) -> np.ndarray:  # type: ignore[no-untyped-def]
    return x.detach().cpu().numpy()


# -- mel and STFT -------------------------------------------------------------------------------


@pytest.mark.parametrize("sr", [22050, 24000])
def test_mel_filterbank_is_librosas(sr):
    librosa = pytest.importorskip("librosa")
    ours = K.mel_filterbank(sr)
    ref = librosa.filters.mel(sr=sr, n_fft=K.N_FFT, n_mels=K.N_MELS)
    assert ours.shape == ref.shape == (80, 513)
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("sr", [22050, 24000])
@pytest.mark.parametrize("seconds", [0.5, 2.0])
@pytest.mark.parametrize("device", DEVICES)
def test_mel_matches_librosa(sr, seconds, device):
    pytest.importorskip("librosa")
    y = K.voice_like(seconds, sr)
    ref = K.mel_librosa(y, sr)
    fb, win = K.mel_filterbank(sr), K.hann_window()
    outputs = {
        "numpy": K.mel_numpy(y, fb, win),
        "scipy": K.mel_scipy(y, fb, win),
        "torch": _np(K.mel_torch(_t(y, device), _t(fb, device), _t(win, device))),
    }
    assert ref.shape == (80, 1 + len(y) // K.HOP)
    for name, out in outputs.items():
        err = K.agreement(out, ref)
        assert err["mismatched"] == 0, name
        assert err["max_rel_error"] < 1e-5, (name, err)


@pytest.mark.parametrize("device", DEVICES)
def test_stft_matches_librosa(device):
    pytest.importorskip("librosa")
    y = K.voice_like(2.0, 24000)
    ref = K.stft_librosa(y)
    win = K.hann_window()
    outputs = {
        "numpy": K.stft_numpy(y, win),
        "scipy": K.stft_scipy(y, win),
        "torch": _np(K.stft_torch(_t(y, device), _t(win, device))),
    }
    for name, out in outputs.items():
        assert np.iscomplexobj(out), name
        err = K.agreement(out, ref)
        assert err["max_rel_error"] < 1e-5, (name, err)


def test_agreement_catches_a_wrong_mel():
    """The check that guards the mel kernels is not blind: a 1% gain error is seen."""
    y = K.voice_like(0.5, 22050)
    fb, win = K.mel_filterbank(22050), K.hann_window()
    good = K.mel_numpy(y, fb, win)
    assert K.agreement(good * 1.01, good)["max_rel_error"] > 5e-3
    assert K.agreement(good[:, :-1], good)["max_rel_error"] is None


# -- resampling -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), K.RESAMPLE_PAIRS)
@pytest.mark.parametrize("device", DEVICES)
def test_resamplers_turn_a_sine_into_the_same_sine(src, dst, device):
    """A 440 Hz tone stays a 440 Hz tone of the same amplitude at the new rate (away from the
    edges, where each resampler pads differently)."""
    n = src  # one second
    t_in = np.arange(n) / src
    y = (0.5 * np.sin(2 * np.pi * 440 * t_in)).astype(np.float32)
    expected_len = math.ceil(n * dst / src)
    t_out = np.arange(expected_len) / dst
    want = 0.5 * np.sin(2 * np.pi * 440 * t_out)
    r = K.SincResampler.design(src, dst)
    outputs = {
        "numpy": K.resample_numpy(y, r),
        "torch": _np(K.resample_torch(_t(y, device), _t(r.kernel[:, None, :], device), r)),
        "scipy": K.resample_scipy(y, src, dst),
    }
    edge = dst // 20
    for name, out in outputs.items():
        assert out.shape == (expected_len,), name
        assert np.abs(out[edge:-edge] - want[edge:-edge]).max() < 5e-3, name


@pytest.mark.parametrize(("src", "dst"), K.RESAMPLE_PAIRS)
def test_resamplers_agree_with_librosa(src, dst):
    pytest.importorskip("librosa")
    y = K.voice_like(2.0, src)
    ref = K.resample_librosa(y, src, dst)
    r = K.SincResampler.design(src, dst)
    numpy_out = K.resample_numpy(y, r)
    torch_out = _np(K.resample_torch(_t(y, "cpu"), _t(r.kernel[:, None, :], "cpu"), r))
    for out in (numpy_out, torch_out, K.resample_scipy(y, src, dst)):
        assert K.agreement(out, ref)["max_rel_error"] < 1e-2
    # numpy and torch run the same filter: equal up to float32 rounding
    assert K.agreement(torch_out, numpy_out)["max_rel_error"] < 1e-5


# -- sampling over logits ---------------------------------------------------------------------------


def _softmax64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _both(fn_np, fn_torch, logits, *args, device="cpu"):  # type: ignore[no-untyped-def]
    return {
        "numpy": fn_np(logits, *args),
        "torch": _np(fn_torch(_t(logits, device), *args)),
    }


@pytest.mark.parametrize(("vocab", "batch"), [(1024, 1), (32000, 8), (151936, 2)])
@pytest.mark.parametrize("device", DEVICES)
def test_top_k_keeps_exactly_the_k_largest(vocab, batch, device):
    logits = K.random_logits(vocab, batch, seed=3)
    k = 50
    for name, out in _both(K.top_k_numpy, K.top_k_torch, logits, k, device=device).items():
        kept = np.isfinite(out)
        assert (kept.sum(axis=-1) == k).all(), name
        assert np.all(out[~kept] == -np.inf), name
        assert np.array_equal(out[kept], logits[kept]), name  # kept logits are untouched
        kth = np.sort(logits, axis=-1)[:, -k][:, None]
        assert np.all(logits[kept].reshape(batch, k) >= kth), name


def test_top_k_with_ties_still_keeps_exactly_k():
    logits = np.zeros((2, 100), np.float32)
    for name, out in _both(K.top_k_numpy, K.top_k_torch, logits, 7).items():
        assert (np.isfinite(out).sum(axis=-1) == 7).all(), name


@pytest.mark.parametrize(
    ("vocab", "batch", "p"), [(1024, 4, 0.9), (32000, 2, 0.5), (151936, 1, 0.95)]
)
@pytest.mark.parametrize("device", DEVICES)
def test_top_p_keeps_the_smallest_set_reaching_p(vocab, batch, p, device):
    logits = K.random_logits(vocab, batch, seed=4)
    probs = _softmax64(logits)
    for name, out in _both(K.top_p_numpy, K.top_p_torch, logits, p, device=device).items():
        kept = np.isfinite(out)
        assert np.array_equal(out[kept], logits[kept]), name
        for row in range(batch):
            kept_p = np.sort(probs[row][kept[row]])
            removed_p = probs[row][~kept[row]]
            assert kept_p.sum() >= p - 1e-9, name  # reaches p
            assert kept_p.sum() - kept_p[0] < p + 1e-9, name  # one token fewer would not
            if removed_p.size:
                assert removed_p.max() <= kept_p[0], name  # the most probable ones are kept


def test_top_p_hand_example():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]])
    logits = np.log(probs).astype(np.float32)
    for p, keep in ((0.75, 2), (0.81, 3), (0.5, 1), (0.99, 4), (0.1, 1)):
        for name, out in _both(K.top_p_numpy, K.top_p_torch, logits, p).items():
            assert np.isfinite(out).sum() == keep, (name, p)
            assert np.isfinite(out[0, :keep]).all(), (name, p)


@pytest.mark.parametrize("device", DEVICES)
def test_temperature_scales_logits(device):
    logits = K.random_logits(32000, 2, seed=5)
    for name, out in _both(
        K.temperature_numpy, K.temperature_torch, logits, 0.7, device=device
    ).items():
        np.testing.assert_allclose(out, logits / 0.7, rtol=1e-6, err_msg=name)
    # a lower temperature sharpens the distribution: the top token's probability grows
    hot, cold = _softmax64(logits / 1.5), _softmax64(K.temperature_numpy(logits, 0.5))
    assert (cold.max(axis=-1) > hot.max(axis=-1)).all()


def test_repetition_penalty_hand_example():
    """As transformers: positive logits divided, negative multiplied, once per repeated token."""
    logits = np.array([[2.0, -2.0, 1.0, 0.5]], np.float32)
    previous = np.array([[0, 1, 1, 1]], np.int64)
    want = np.array([[1.0, -4.0, 1.0, 0.5]], np.float32)
    for name, fn in (("numpy", K.repetition_penalty_numpy), ("torch", None)):
        if fn is None:
            out = _np(K.repetition_penalty_torch(_t(logits, "cpu"), _t(previous, "cpu"), 2.0))
        else:
            out = fn(logits, previous, 2.0)
        np.testing.assert_array_equal(out, want, err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
def test_repetition_penalty_matches_a_plain_loop(device):
    vocab, batch = 32000, 3
    logits = K.random_logits(vocab, batch, seed=6)
    previous = K.random_context(vocab, batch, n=300, seed=7)
    want = logits.copy()
    for b in range(batch):
        for tok in set(previous[b].tolist()):
            v = logits[b, tok]
            want[b, tok] = v * np.float32(1.3) if v < 0 else v / np.float32(1.3)
    np_out = K.repetition_penalty_numpy(logits, previous, 1.3)
    torch_out = _np(K.repetition_penalty_torch(_t(logits, device), _t(previous, device), 1.3))
    np.testing.assert_allclose(np_out, want, rtol=1e-6)
    np.testing.assert_allclose(torch_out, want, rtol=1e-6)
    untouched = np.ones_like(logits, bool)
    np.put_along_axis(untouched, previous, False, -1)
    assert np.array_equal(np_out[untouched], logits[untouched])


# -- frame-code packing -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int16", "int32"])
@pytest.mark.parametrize("device", DEVICES)
def test_pack_unpack_round_trip(dtype, device):
    codes = K.random_codes(150, 8, dtype)
    packed = K.pack_delay_numpy(codes)
    assert packed.dtype == np.dtype(dtype)
    assert packed.shape == ((150 + 8 - 1) * 8,)
    np.testing.assert_array_equal(K.unpack_delay_numpy(packed, 8), codes)
    t_packed = K.pack_delay_torch(_t(codes, device))
    np.testing.assert_array_equal(_np(t_packed), packed)
    np.testing.assert_array_equal(_np(K.unpack_delay_torch(t_packed, 8)), codes)


def test_pack_follows_the_delay_pattern():
    """Step s holds codebook k's frame s - k (offset into codebook k's id range), else padding."""
    frames, books, card = 5, 3, K.CODEBOOK_SIZE
    codes = np.arange(frames * books, dtype=np.int32).reshape(frames, books)
    grid = K.pack_delay_numpy(codes).reshape(frames + books - 1, books)
    pad = K.pad_token(books)
    for s in range(frames + books - 1):
        for k in range(books):
            f = s - k
            want = codes[f, k] + k * card if 0 <= f < frames else pad
            assert grid[s, k] == want, (s, k)


# -- the registry and the agreement measure -------------------------------------------------------


def test_every_kernel_builds_and_runs_on_numpy():
    for kernel in K.KERNELS.values():
        size = kernel.sizes(True)[0]
        prepared = kernel.build("numpy", "cpu", size)
        out = prepared.to_numpy(prepared.call())
        assert out.size > 0, kernel.name


def test_quick_sizes_are_a_subset_of_the_full_ones():
    for kernel in K.KERNELS.values():
        full = {(s.workload, s.input_id) for s in kernel.sizes(False)}
        quick = {(s.workload, s.input_id) for s in kernel.sizes(True)}
        assert quick and quick < full, kernel.name


def test_agreement_counts_masks_that_differ():
    ref = np.array([1.0, -np.inf, 3.0])
    assert K.agreement(ref, ref) == {"max_abs_error": 0.0, "max_rel_error": 0.0, "mismatched": 0}
    out = np.array([1.0, 2.0, -np.inf])
    assert K.agreement(out, ref)["mismatched"] == 2
    assert K.agreement(np.array([1.0, -np.inf, 3.3]), ref)["max_rel_error"] == pytest.approx(0.1)


# -- torchaudio, where installed ------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_torchaudio_backend_agrees_with_librosa(device):
    pytest.importorskip("torchaudio")
    pytest.importorskip("librosa")
    for name in ("mel", "stft", "resample"):
        kernel = K.KERNELS[name]
        size = kernel.sizes(True)[-1]
        ours = kernel.build("torchaudio", device, size)
        ref = kernel.build("librosa", "cpu", size)
        err = K.agreement(ours.to_numpy(ours.call()), ref.to_numpy(ref.call()))
        assert err["max_rel_error"] is not None, (name, err)
        assert err["max_rel_error"] < (1e-2 if name == "resample" else 1e-5), (name, err)
