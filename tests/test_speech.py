"""Tests for fakebench.speech: espeak-ng synthesis through ctypes, with word timings."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fakebench.errors import ConfigError
from fakebench.speech import WordTiming, list_voices, synthesize

SENTENCE = "The quick brown fox jumps over the lazy dog."
SAMPLE_RATE = 22050


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def _median_f0(audio: np.ndarray, sample_rate: int) -> float:
    """Median autocorrelation pitch (60-400 Hz) over loud frames."""
    frame = 1024
    pitches = []
    for start in range(0, len(audio) - frame, frame // 2):
        x = audio[start : start + frame].astype(np.float64)
        if _rms(x) < 0.05:
            continue
        x -= x.mean()
        autocorr = np.correlate(x, x, "full")[frame - 1 :]
        low, high = sample_rate // 400, sample_rate // 60
        pitches.append(sample_rate / (low + int(np.argmax(autocorr[low:high]))))
    return float(np.median(pitches))


def test_audio_is_float32_mono_and_audible() -> None:
    audio, sample_rate, _ = synthesize("Hello world.")
    assert sample_rate == SAMPLE_RATE
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert 0.3 < len(audio) / sample_rate < 3.0
    assert _rms(audio) > 0.02
    assert 0.2 < np.abs(audio).max() <= 1.0


def test_longer_text_gives_longer_audio() -> None:
    short, _, _ = synthesize("Hello world.")
    long, _, _ = synthesize("Hello world. This sentence comes second and has a few more words in it.")
    assert len(long) > 2 * len(short)


def test_word_timings_follow_the_words() -> None:
    audio, sample_rate, words = synthesize(SENTENCE)
    duration = len(audio) / sample_rate
    assert all(isinstance(w, WordTiming) for w in words)
    assert [w.word for w in words] == SENTENCE.rstrip(".").split()
    assert words[0].start_s >= 0.0
    assert words[-1].end_s <= duration
    assert duration - words[-1].end_s < 0.1  # the last word runs to the end of speech
    for word, following in zip(words, words[1:], strict=False):
        assert word.start_s < word.end_s == following.start_s
    overall = _rms(audio)
    for word in words:
        segment = audio[int(word.start_s * sample_rate) : int(word.end_s * sample_rate)]
        assert _rms(segment) > 0.25 * overall, word


def test_word_text_drops_punctuation_and_keeps_multi_event_words_whole() -> None:
    # espeak speaks "123" as several words and "well-known" as one event of length 4.
    _, _, words = synthesize("Hello, world! I have 123 well-known apples.")
    assert [w.word for w in words] == ["Hello", "world", "I", "have", "123", "well-known", "apples"]
    assert all(a.start_s < b.start_s for a, b in zip(words, words[1:], strict=False))


def test_word_positions_count_characters_not_bytes() -> None:
    _, _, words = synthesize("Café naïve résumé", voice="fr")
    assert [w.word for w in words] == ["Café", "naïve", "résumé"]


def test_slower_rate_gives_longer_audio() -> None:
    slow, _, slow_words = synthesize(SENTENCE, rate_wpm=100)
    fast, _, fast_words = synthesize(SENTENCE, rate_wpm=300)
    assert len(slow) > 2 * len(fast)
    assert slow_words[-1].start_s > 2 * fast_words[-1].start_s


def test_higher_pitch_raises_f0() -> None:
    low, sample_rate, _ = synthesize(SENTENCE, pitch=10)
    high, _, _ = synthesize(SENTENCE, pitch=90)
    assert _median_f0(high, sample_rate) > 1.5 * _median_f0(low, sample_rate)


def _starts(voice: str) -> np.ndarray:
    return np.array([w.start_s for w in synthesize(SENTENCE, voice=voice)[2]])


def test_different_voices_give_different_speech() -> None:
    assert np.abs(_starts("en-us") - _starts("en-us")).max() <= 0.005  # repeat noise is about 1 ms
    assert np.abs(_starts("en-us") - _starts("en-gb")).max() > 0.02
    assert np.abs(_starts("en") - _starts("de")).max() > 0.02


@pytest.mark.parametrize("voice", ["en", "en-us", "en-gb", "EN-US", "gmw/en-US", "en+f3", "de"])
def test_voice_spellings_are_accepted(voice: str) -> None:
    audio, _, words = synthesize("Hello there.", voice=voice)
    assert _rms(audio) > 0.02
    assert [w.word for w in words] == ["Hello", "there"]


def test_list_voices() -> None:
    english = list_voices("en")
    assert {"en", "en-us", "en-gb"} <= set(english)
    assert all(code == "en" or code.startswith("en-") for code in english)
    everything = list_voices()
    assert set(english) < set(everything)
    assert {"de", "fr"} <= set(everything)
    assert list_voices("xx-nope") == []
    for voice in english:
        assert _rms(synthesize("Hi.", voice=voice)[0]) > 0.01, voice


@pytest.mark.parametrize("voice", ["no-such-voice", "", "en-zz", "+f3"])
def test_unknown_voice_is_a_config_error(voice: str) -> None:
    with pytest.raises(ConfigError, match=r"unknown voice .*en-us.*list_voices\(\)"):
        synthesize("Hello.", voice=voice)


def test_unknown_voice_variant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown voice variant 'nosuch'.*f3"):
        synthesize("Hello.", voice="en+nosuch")


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="empty"):
        synthesize(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_wpm": 79}, "rate_wpm=79 is out of range"),
        ({"rate_wpm": 451}, "rate_wpm=451 is out of range"),
        ({"rate_wpm": 160.0}, "rate_wpm=160.0 is not a whole number"),
        ({"pitch": -1}, "pitch=-1 is out of range"),
        ({"pitch": 101}, "pitch=101 is out of range"),
    ],
)
def test_bad_rate_or_pitch_is_a_config_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synthesize("Hello.", **kwargs)  # type: ignore[arg-type]


def test_rate_limits_are_accepted() -> None:
    for rate in (80, 450):
        assert _rms(synthesize("Hello.", rate_wpm=rate)[0]) > 0.02


def test_settings_do_not_leak_into_the_next_call() -> None:
    _, _, before = synthesize(SENTENCE)
    synthesize("Something else entirely.", voice="de", rate_wpm=400, pitch=90)
    _, _, after = synthesize(SENTENCE)
    assert [w.word for w in after] == [w.word for w in before]
    assert np.abs(np.array([w.start_s for w in after]) - [w.start_s for w in before]).max() <= 0.005


def test_threads_share_the_engine_safely() -> None:
    texts = ["Hello world.", SENTENCE, "One two three four.", "Good morning to you."] * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(synthesize, texts))
    for text, (audio, _, words) in zip(texts, results, strict=True):
        assert [w.word for w in words] == text.rstrip(".").split()
        assert _rms(audio) > 0.02


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_works_in_a_worker_process(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    synthesize("Warm up the engine in the parent first.")
    with multiprocessing.get_context(method).Pool(1) as pool:
        audio, sample_rate, words = pool.apply(synthesize, (SENTENCE,), {"voice": "en-us"})
    assert sample_rate == SAMPLE_RATE
    assert _rms(audio) > 0.02
    assert [w.word for w in words] == SENTENCE.rstrip(".").split()
    local = [w.start_s for w in synthesize(SENTENCE, voice="en-us")[2]]
    assert np.abs(np.array([w.start_s for w in words]) - local).max() <= 0.005


def test_missing_library_is_a_fakebench_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import espeakng_loader

    from fakebench import speech
    from fakebench.errors import FakebenchError

    monkeypatch.setattr(speech, "_engine", None)
    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    with pytest.raises(
        FakebenchError, match="cannot load the espeak-ng library.*pip install espeakng-loader"
    ):
        synthesize("Hello.")


# ---------------------------------------------------------------------------------------------- emotional prosody

# Direction of each emotion's preset (expression spec §6) relative to neutral: pitch, duration (slower = longer),
# loudness; 0 where the preset leaves it (almost) as it is.
EMOTION_DIRECTIONS = {
    "happy": (1, -1, 1),
    "sad": (-1, 1, -1),
    "angry": (1, -1, 1),
    "surprised": (1, -1, 1),
    "fearful": (1, -1, 0),
    "disgusted": (-1, 1, -1),
}


@pytest.fixture(scope="module")
def emotion_measures() -> dict[str, tuple[float, float, float]]:
    """Median F0 (pyin), duration and RMS of the sentence spoken with each emotion."""
    import librosa

    from fakebench.speech import EMOTIONS

    measures = {}
    for emotion in EMOTIONS:
        audio, sample_rate, _ = synthesize(SENTENCE, emotion=emotion)
        f0, voiced, _ = librosa.pyin(audio.astype(np.float64), fmin=65, fmax=500, sr=sample_rate)
        measures[emotion] = (float(np.nanmedian(f0[voiced])), len(audio) / sample_rate, _rms(audio))
    return measures


@pytest.mark.parametrize("emotion", sorted(EMOTION_DIRECTIONS))
def test_emotion_moves_pitch_rate_and_loudness_as_its_preset_says(emotion, emotion_measures) -> None:
    neutral = emotion_measures["neutral"]
    measured = emotion_measures[emotion]
    for what, sign, value, base in zip(("F0", "duration", "RMS"), EMOTION_DIRECTIONS[emotion], measured, neutral,
                                       strict=True):
        change = value / base - 1
        if sign == 0:
            assert abs(change) < 0.1, (what, emotion, measured, neutral)
        else:
            assert sign * change > 0.05, (what, emotion, measured, neutral)


def test_neutral_emotion_is_no_emotion_and_explicit_rate_and_pitch_win() -> None:
    from fakebench.speech import prosody_for

    assert prosody_for("neutral") == prosody_for(None) == {"rate_wpm": 160, "pitch": 50, "pitch_range": 50,
                                                             "volume": 100}
    plain, _, _ = synthesize("Hello world.", fresh=True)
    neutral, _, _ = synthesize("Hello world.", emotion="neutral", fresh=True)
    assert np.array_equal(plain, neutral)
    sad = synthesize(SENTENCE, emotion="sad", rate_wpm=160, pitch=50)[0]
    happy = synthesize(SENTENCE, emotion="happy", rate_wpm=160, pitch=50)[0]
    assert abs(len(sad) - len(happy)) / len(happy) < 0.02  # same rate: range and volume still differ
    assert _rms(happy) > _rms(sad)


def test_emotion_in_a_fresh_process_gives_the_same_audio_twice() -> None:
    first, _, words = synthesize("Hello world.", voice="en+f3", emotion="angry", fresh=True)
    second, _, again = synthesize("Hello world.", voice="en+f3", emotion="angry", fresh=True)
    assert np.array_equal(first, second) and words == again
    here, _, _ = synthesize("Hello world.", voice="en+f3", fresh=True)
    assert not np.array_equal(first, here)  # the emotion reached the child process


def test_unknown_emotion_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        synthesize("Hello world.", emotion="bored")
    message = str(caught.value)
    assert "\n" not in message and "'bored'" in message
    assert all(name in message for name in ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted"))
