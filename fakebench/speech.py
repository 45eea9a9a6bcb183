"""Text to speech with word timings, through the espeak-ng library shipped by the ``espeakng-loader`` wheel.

espeak-ng keeps global state, so the library is initialised once per process, on first use, and every
call into it is serialised by one lock. It runs in synchronous mode, so it starts no threads of its own
and a forked child can go on using the copy it inherits.
"""

from __future__ import annotations

import bisect
import ctypes
import os
import re
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fakebench.errors import ConfigError, FakebenchError

RATE_MIN_WPM = 80
RATE_MAX_WPM = 450
PITCH_MIN = 0
PITCH_MAX = 100
DEFAULT_RATE_WPM = 160
DEFAULT_PITCH = 50
DEFAULT_RANGE = 50  # espeak's own defaults for pitch range (0 monotone .. 100) and volume (0 .. 200)
DEFAULT_VOLUME = 100

# Emotional prosody: the "starting presets" of the expression spec (§6) (rate, pitch, range, volume per
# emotion; from Murray & Arnott 1993 and measured espeak maps, not perceptually validated). The spec's rates are
# relative to espeak's 175 wpm; here they scale the default rate (160), so that "neutral" is no emotion at all.
_SPEC_NEUTRAL_RATE = 175
_PRESETS: dict[str, tuple[int, int, int, int]] = {  # emotion -> (rate at 175 wpm neutral, pitch, range, volume)
    "neutral": (175, 50, 50, 100),
    "happy": (185, 65, 80, 115),
    "sad": (150, 40, 25, 85),
    "angry": (190, 68, 85, 135),
    "surprised": (195, 66, 90, 115),
    "fearful": (215, 72, 80, 100),
    "disgusted": (130, 35, 55, 85),
}
EMOTIONS = tuple(_PRESETS)

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it, espeak calls exit() when its data directory is missing
_EE_OK = 0
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        # Not c_char_p: a list of (priority byte, NUL-terminated code) pairs ended by a zero byte.
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class WordTiming:
    word: str  # the word text as in the input, without surrounding punctuation
    start_s: float  # where espeak says the word starts in the returned audio
    end_s: float  # start of the next word, or end of speech for the last word


@dataclass
class _Capture:
    chunks: list[np.ndarray] = field(default_factory=list)
    words: list[tuple[int, int]] = field(default_factory=list)  # (0-based character index, audio ms)
    end_ms: int | None = None  # audio position of the last clause end espeak reported
    error: BaseException | None = None  # raised inside the callback, where ctypes would only print it


@dataclass(frozen=True)
class _VoiceTable:
    by_key: dict[str, str]  # lower-case identifier, language code, file name or name -> identifier
    languages: tuple[str, ...]  # language codes, the names list_voices() offers
    variants: dict[str, str]  # lower-case variant name -> variant file name


class _Engine:
    """The initialised espeak-ng library. Use only while holding ``_lock``."""

    def __init__(self) -> None:
        self._lib, data_dir = _load_library()
        self.sample_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_dir).encode(), _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            raise FakebenchError(
                f"espeak-ng could not start with its data in {data_dir}; "
                "reinstall it with `pip install --force-reinstall espeakng-loader`"
            )
        self._capture = _Capture()
        # espeak keeps only the raw pointer, so this object must live as long as the engine.
        self._callback = _SynthCallback(self._on_synth)
        self._lib.espeak_SetSynthCallback(self._callback)
        voices = self._list_voices(None)
        self.voices = _VoiceTable(
            by_key=_voice_keys(voices),
            languages=tuple(sorted({code.lower() for _, _, codes in voices for _, code in codes})),
            variants={
                Path(ident).name.lower(): Path(ident).name for _, ident, _ in self._list_voices("variant")
            },
        )

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int, pitch_range: int = DEFAULT_RANGE,
                   volume: int = DEFAULT_VOLUME) -> _Capture:
        self._call("espeak_SetVoiceByName", voice.encode())
        # Every parameter is set on every call: espeak keeps them, and one call's must not leak into the next.
        self._call("espeak_SetParameter", _PARAM_RATE, rate_wpm, 0)
        self._call("espeak_SetParameter", _PARAM_PITCH, pitch, 0)
        self._call("espeak_SetParameter", _PARAM_RANGE, pitch_range, 0)
        self._call("espeak_SetParameter", _PARAM_VOLUME, volume, 0)
        data = text.encode("utf-8", errors="replace")
        capture = self._capture = _Capture()
        # espeak-ng draws noise (the breath of variants such as +f3 and +whisper) from a generator it seeds from
        # the clock, and from the C library's rand(): both seeded here, the same call gives the same audio at any
        # time (espeak_ng_SetRandSeed exists from espeak-ng 1.51).
        seed_espeak = getattr(self._lib, "espeak_ng_SetRandSeed", None)
        if seed_espeak is not None:
            seed_espeak(ctypes.c_long(0))
        _libc_srand(0)
        try:
            self._call("espeak_Synth", data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._call("espeak_Synchronize")
        finally:
            self._capture = _Capture()
        if capture.error is not None:
            raise capture.error
        return capture

    def _on_synth(self, wav: ctypes._Pointer, n_samples: int, events: ctypes._Pointer) -> int:
        """espeak's synth callback; returns 0 to go on, 1 to abort."""
        try:
            self._collect(self._capture, wav, n_samples, events)
        except BaseException as exc:
            self._capture.error = exc
            return 1
        return 0

    @staticmethod
    def _collect(capture: _Capture, wav: ctypes._Pointer, n_samples: int, events: ctypes._Pointer) -> None:
        if wav and n_samples > 0:
            capture.chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events and events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_WORD:
                capture.words.append((event.text_position - 1, event.audio_position))  # 1-based in espeak
            elif event.type == _EVENT_END:
                capture.end_ms = event.audio_position
            i += 1

    def _call(self, name: str, *args: object) -> None:
        code = getattr(self._lib, name)(*args)
        if code != _EE_OK:
            raise FakebenchError(
                f"espeak-ng call {name} failed with error code {code}; "
                "reinstall it with `pip install --force-reinstall espeakng-loader`"
            )

    def _list_voices(self, language: str | None) -> list[tuple[str, str, list[tuple[int, str]]]]:
        """(name, identifier, [(priority, language code)]) for each voice espeak knows."""
        spec = None
        if language is not None:
            code = ctypes.create_string_buffer(language.encode())
            spec = _Voice(languages=ctypes.cast(code, ctypes.c_void_p))
        found = self._lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
        voices = []
        i = 0
        while found[i]:
            voice = found[i].contents
            voices.append((voice.name.decode(), voice.identifier.decode(), _parse_languages(voice.languages)))
            i += 1
        return voices


def _libc_srand(seed: int) -> None:
    try:
        ctypes.CDLL(None).srand(ctypes.c_uint(seed))
    except (OSError, AttributeError):  # no C library symbols to reach (not glibc/musl): breath noise stays random
        pass


def _load_library() -> tuple[ctypes.CDLL, Path]:
    """The espeak-ng library and the directory that holds its ``espeak-ng-data``."""
    try:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_dir = Path(espeakng_loader.get_data_path()).parent
    except (ImportError, OSError, RuntimeError) as exc:
        raise FakebenchError(
            f"cannot load the espeak-ng library ({exc}); install it with `pip install espeakng-loader`"
        ) from exc
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    return lib, data_dir


def _parse_languages(address: int | None) -> list[tuple[int, str]]:
    languages = []
    while address and (priority := ctypes.c_ubyte.from_address(address).value) != 0:
        code = ctypes.string_at(address + 1)
        languages.append((priority, code.decode()))
        address += len(code) + 2
    return languages


def _voice_keys(voices: list[tuple[str, str, list[tuple[int, str]]]]) -> dict[str, str]:
    """Every accepted spelling of a voice, lower-cased, mapped to the identifier espeak loads it by."""
    names = {name.lower(): ident for name, ident, _ in voices}
    files = {Path(ident).name.lower(): ident for _, ident, _ in voices}
    best: dict[str, tuple[int, str]] = {}  # language code -> (priority, identifier); lower priority wins
    for _, ident, codes in voices:
        for priority, code in codes:
            if code.lower() not in best or priority < best[code.lower()][0]:
                best[code.lower()] = (priority, ident)
    languages = {code: ident for code, (_, ident) in best.items()}
    identifiers = {ident.lower(): ident for _, ident, _ in voices}
    return names | files | languages | identifiers


_engine: _Engine | None = None
_lock = threading.Lock()


def _engine_locked() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()


# Holding the lock across fork() means a child never inherits espeak halfway through a synthesis.
os.register_at_fork(
    before=lambda: _lock.acquire(),
    after_in_parent=lambda: _lock.release(),
    after_in_child=_reset_lock_in_child,
)


def prosody_for(emotion: str | None) -> dict[str, int]:
    """The espeak prosody of an emotion: ``rate_wpm``, ``pitch``, ``pitch_range`` and ``volume`` (the spec's
    starting presets, rate scaled so that "neutral", like None, is today's default); ConfigError for an unknown
    name."""
    name = "neutral" if emotion is None else emotion
    if name not in _PRESETS:
        raise ConfigError(f"unknown emotion {emotion!r}; use one of {', '.join(EMOTIONS)}")
    rate, pitch, pitch_range, volume = _PRESETS[name]
    return {"rate_wpm": round(rate * DEFAULT_RATE_WPM / _SPEC_NEUTRAL_RATE), "pitch": pitch,
            "pitch_range": pitch_range, "volume": volume}


def synthesize(
    text: str, *, voice: str = "en", rate_wpm: int | None = None, pitch: int | None = None,
    emotion: str | None = None, fresh: bool = False
) -> tuple[np.ndarray, int, list[WordTiming]]:
    """Speak ``text`` with espeak-ng.

    Returns float32 mono audio in [-1, 1] exactly as espeak produced it, espeak's native sample rate
    (22050 Hz), and the timing of each spoken word. ``voice`` is a language code such as "en", "en-us"
    or "en-gb" (see :func:`list_voices`), an espeak voice identifier such as "gmw/en-US", and may end
    in "+variant" (e.g. "en+f3").

    ``emotion`` (one of `EMOTIONS`; None is neutral) sets the rate, pitch, pitch range and volume of that
    emotion (`prosody_for`); ``rate_wpm`` (default 160) and ``pitch`` (default 50), when given, win over it.

    Repeated calls are not bit-identical: espeak's pitch flutter keeps a phase across calls that no API
    resets, so the audio (not the word timings, which move by at most a millisecond or so) depends on
    what the process synthesised before. A fresh process replaying the same calls gets the same audio.
    With ``fresh`` the call runs in a new process (about half a second more), so the same arguments always
    give the same audio, whatever was spoken before and in whichever worker: corpora use it.
    """
    _check_text(text)
    prosody = prosody_for(emotion)
    rate_wpm = prosody["rate_wpm"] if rate_wpm is None else rate_wpm
    pitch = prosody["pitch"] if pitch is None else pitch
    _check_int("rate_wpm", rate_wpm, RATE_MIN_WPM, RATE_MAX_WPM, "words per minute")
    _check_int("pitch", pitch, PITCH_MIN, PITCH_MAX, "(50 is normal)")
    if fresh:
        return _synthesize_in_fresh_process(text, voice, rate_wpm, pitch, emotion)
    with _lock:
        engine = _engine_locked()
        capture = engine.synthesize(text, _resolve_voice(engine.voices, voice), rate_wpm, pitch,
                                    prosody["pitch_range"], prosody["volume"])
        sample_rate = engine.sample_rate
    samples = np.concatenate(capture.chunks) if capture.chunks else np.zeros(0, dtype=np.int16)
    audio = samples.astype(np.float32) / np.float32(32768.0)
    duration_s = len(audio) / sample_rate
    return audio, sample_rate, _word_timings(text, capture.words, capture.end_ms, duration_s)


def _synthesize_in_fresh_process(text: str, voice: str, rate_wpm: int, pitch: int,
                                 emotion: str | None = None) -> tuple[np.ndarray, int, list[WordTiming]]:
    import io
    import json
    import subprocess
    import sys

    request = json.dumps({"text": text, "voice": voice, "rate_wpm": rate_wpm, "pitch": pitch, "emotion": emotion})
    done = subprocess.run([sys.executable, "-c", "from fakebench.speech import _serve_one; _serve_one()"],
                          input=request.encode(), capture_output=True, timeout=300)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise FakebenchError(f"speech synthesis in a fresh process failed: {lines[-1] if lines else 'no message'}")
    with np.load(io.BytesIO(done.stdout)) as arrays:
        words = [WordTiming(str(w), float(a), float(b)) for w, a, b in zip(arrays["words"], arrays["starts"],
                                                                            arrays["ends"], strict=True)]
        return arrays["audio"].copy(), int(arrays["sample_rate"]), words


def _serve_one() -> None:
    """The child side of `synthesize(fresh=True)`: one request (JSON on stdin), the result as npz on stdout."""
    import io
    import json
    import sys

    request = json.loads(sys.stdin.read())
    audio, sample_rate, words = synthesize(**request)
    buffer = io.BytesIO()
    np.savez(buffer, audio=audio, sample_rate=sample_rate, words=np.array([w.word for w in words], dtype=str),
             starts=np.array([w.start_s for w in words]), ends=np.array([w.end_s for w in words]))
    sys.stdout.buffer.write(buffer.getvalue())


def list_voices(language: str | None = None) -> list[str]:
    """Language codes usable as ``voice``, all of them or those of one language ("en" gives "en-us"...)."""
    with _lock:
        codes = _engine_locked().voices.languages
    if language is None:
        return list(codes)
    wanted = language.strip().lower()
    return [code for code in codes if code == wanted or code.startswith(wanted + "-")]


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise ConfigError(
            f"text to speak must be a str, not {type(text).__name__}; pass the words as a string"
        )
    if not text.strip():
        raise ConfigError(f"text to speak is empty ({text!r}); pass at least one word")
    if "\x00" in text:
        raise ConfigError("text to speak contains a NUL character; remove it")


def _check_int(name: str, value: int, low: int, high: int, unit: str) -> None:
    problem = "is not a whole number" if isinstance(value, bool) or not isinstance(value, int) else None
    if problem is None and not low <= value <= high:
        problem = "is out of range"
    if problem is not None:
        raise ConfigError(f"{name}={value!r} {problem}; use a whole number from {low} to {high} {unit}")


def _resolve_voice(voices: _VoiceTable, voice: str) -> str:
    """The espeak name to load for ``voice``, or ConfigError."""
    base, plus, variant = str(voice).strip().partition("+")
    identifier = voices.by_key.get(base.lower())
    if identifier is None:
        examples = ", ".join(
            code for code in ("en", "en-us", "en-gb", "de", "fr", "es") if code in voices.by_key
        )
        raise ConfigError(
            f"unknown voice {voice!r}; use a language code such as {examples} "
            f"(fakebench.speech.list_voices() lists all {len(voices.languages)})"
        )
    if not plus:
        return identifier
    variant_file = voices.variants.get(variant.lower())
    if variant_file is None:
        examples = ", ".join(
            name for name in ("f1", "f2", "f3", "m1", "m2", "m3", "klatt") if name in voices.variants
        )
        raise ConfigError(
            f"unknown voice variant {variant!r} in {voice!r}; use one of the {len(voices.variants)} espeak "
            f"variants, such as {examples}, or drop the '+{variant}'"
        )
    return f"{identifier}+{variant_file}"


_TOKEN = re.compile(r"\S+")
_EDGE_PUNCTUATION = string.punctuation + "‘’“”«»„‹›…–—¿¡"


def _word_timings(
    text: str, words: list[tuple[int, int]], end_ms: int | None, duration_s: float
) -> list[WordTiming]:
    """One timing per input word espeak spoke, from its (character index, audio ms) word events.

    espeak's word lengths are unreliable ("well-known" is one event of length 4, "123" several events
    for one token), so each event is attributed to the whitespace-separated token it starts in, and
    later events in an already-seen token extend that word.
    """
    tokens = [match.span() for match in _TOKEN.finditer(text)]
    token_starts = [start for start, _ in tokens]
    spoken: list[tuple[int, float]] = []  # (token index, start s)
    for char_index, audio_ms in words:
        token = _token_at(tokens, token_starts, char_index)
        if not spoken or token > spoken[-1][0]:
            spoken.append((token, min(audio_ms / 1000, duration_s)))
    last_start = spoken[-1][1] if spoken else 0.0
    end_s = duration_s if end_ms is None or end_ms / 1000 <= last_start else min(end_ms / 1000, duration_s)
    ends = [start for _, start in spoken[1:]] + [end_s]
    return [
        WordTiming(word=_word_text(text, *tokens[token]), start_s=start, end_s=end)
        for (token, start), end in zip(spoken, ends, strict=True)
    ]


def _token_at(tokens: list[tuple[int, int]], token_starts: list[int], char_index: int) -> int:
    """Index of the token that holds ``char_index``, or the next one when it falls in whitespace."""
    index = max(bisect.bisect_right(token_starts, char_index) - 1, 0)
    if char_index >= tokens[index][1] and index + 1 < len(tokens):
        index += 1
    return index


def _word_text(text: str, start: int, end: int) -> str:
    token = text[start:end]
    return token.strip(_EDGE_PUNCTUATION) or token


# ---------------------------------------------------------------------------------------------- singing

# A short tune for demos and tests: "Twinkle, twinkle, little star" (C major from C3, a man's range, 96 bpm), one
# syllable per note.
DEMO_LYRICS = ("twin", "kle", "twin", "kle", "lit", "tle", "star", "how", "I", "won", "der", "what", "you", "are")
DEMO_NOTES = ((48, 0.62), (48, 0.62), (55, 0.62), (55, 0.62), (57, 0.62), (57, 0.62), (55, 1.25),
              (53, 0.62), (53, 0.62), (52, 0.62), (52, 0.62), (50, 0.62), (50, 0.62), (48, 1.25))
REST = "-"  # a syllable that is silence for its note's length
_CALIBRATION_PITCHES = (0, 20, 40, 60, 80, 100)
_SING_RATE_WPM = 130
_EDGE_S = 0.008  # fade in and out of each note


def midi_hz(note: float) -> float:
    """The frequency (Hz) of a MIDI note number (69 = A4 = 440 Hz)."""
    return 440.0 * 2.0 ** ((float(note) - 69.0) / 12.0)


def sing(syllables: tuple[str, ...] | list[str], notes: tuple[tuple[float, float], ...] | list[tuple[float, float]], *,
         voice: str = "en", gap_s: float = 0.03) -> tuple[np.ndarray, int]:
    """A song, one syllable per note: float32 mono audio and its sample rate (espeak's, 22050 Hz).

    ``notes`` are (MIDI note number, seconds). Each syllable is spoken by espeak-ng in monotone at the espeak pitch
    nearest the note (measured per voice), its remaining pitch error shifted away (librosa), and its vowel (the
    longest voiced stretch) time-stretched so that the syllable fills the note less ``gap_s``; a syllable longer
    than its note is compressed whole. `REST` ("-") is silence.

    espeak-ng sings poorly: robotic, with pitch steps from note to note (no glides, no vibrato) and vowels
    stretched by a phase vocoder. What it does do is what the talking-face generators need to be tested on:
    vowels held for as long as the notes last and a pitch that follows the melody (within about a semitone).
    """
    import librosa

    from fakebench.pitch import f0_track

    if len(syllables) != len(notes):
        raise ConfigError(f"sing: {len(syllables)} syllables for {len(notes)} notes; give one syllable per note")
    if not notes:
        raise ConfigError("sing: no notes; give at least one (MIDI note, seconds)")
    for midi, seconds in notes:
        if not (24 <= float(midi) <= 96) or not (0.05 <= float(seconds) <= 30):
            raise ConfigError(f"sing: note ({midi}, {seconds}) is out of range; MIDI notes 24-96, 0.05-30 s long")
    calibration = _pitch_calibration(voice)
    pieces: list[np.ndarray] = []
    sample_rate = 0
    for text, (midi, seconds) in zip(syllables, notes, strict=True):
        target = midi_hz(midi)
        espeak_pitch = int(np.clip(round(float(np.interp(np.log(target), np.log(calibration[1]), calibration[0]))),
                                   PITCH_MIN, PITCH_MAX))
        audio, sample_rate = _monotone(text, voice, espeak_pitch) if text.strip() != REST else (None, sample_rate)
        length = int(round(float(seconds) * (sample_rate or 22050)))
        if audio is None or audio.size == 0:
            pieces.append(np.zeros(length, np.float32))
            continue
        track = f0_track(audio, sample_rate)
        if track.voiced.any():
            # the measured f0 taken to the octave of what the calibration expects (f0 trackers err by octaves)
            expected = float(np.interp(espeak_pitch, *calibration))
            measured = track.median_f0()
            measured *= 2.0 ** round(float(np.log2(expected / measured)))
            steps = 12.0 * np.log2(target / measured)
            if abs(steps) > 0.05:
                audio = librosa.effects.pitch_shift(audio, sr=sample_rate, n_steps=float(steps)).astype(np.float32)
        pieces.append(_fit_note(audio, sample_rate, track, max(length - int(gap_s * sample_rate), 1), length))
    song = np.concatenate(pieces).astype(np.float32)
    peak = float(np.abs(song).max()) if song.size else 0.0
    return (song * (0.9 / peak) if peak > 0 else song).astype(np.float32), sample_rate


def _monotone(text: str, voice: str, pitch: int) -> tuple[np.ndarray, int]:
    """One syllable in monotone (pitch range 0), its silence trimmed."""
    from fakebench.media import speech_bounds

    _check_text(text)
    with _lock:
        engine = _engine_locked()
        capture = engine.synthesize(text, _resolve_voice(engine.voices, voice), _SING_RATE_WPM, pitch, 0,
                                    DEFAULT_VOLUME)
        sample_rate = engine.sample_rate
    samples = np.concatenate(capture.chunks) if capture.chunks else np.zeros(0, dtype=np.int16)
    audio = samples.astype(np.float32) / np.float32(32768.0)
    if audio.size < sample_rate // 50 or not np.any(audio):
        return audio, sample_rate
    start, end = speech_bounds(audio, sample_rate)
    return audio[int(start * sample_rate):int(end * sample_rate)], sample_rate


_calibrations: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _pitch_calibration(voice: str) -> tuple[np.ndarray, np.ndarray]:
    """(espeak pitch settings, the f0 in Hz each gives `voice` in monotone), measured once per voice."""
    from fakebench.pitch import f0_track

    if voice not in _calibrations:
        pitches = np.array(_CALIBRATION_PITCHES, np.float64)
        hz = np.full(pitches.size, np.nan)
        for i, p in enumerate(_CALIBRATION_PITCHES):
            audio, sr = _monotone("ah", voice, p)
            track = f0_track(audio, sr)
            # A vowel the tracker finds mostly unvoiced (espeak's lowest pitches sit near its floor, and whether
            # they pass depends on espeak's flutter phase) says nothing: its few "voiced" frames are spurious.
            if track.voiced.mean() >= 0.5:
                hz[i] = track.median_f0()
        ok = np.isfinite(hz)
        if ok.sum() < 2:
            raise FakebenchError(f"espeak-ng voice {voice!r} gave no measurable pitch; sing with another voice")
        f = np.exp(np.interp(pitches, pitches[ok], np.log(hz[ok])))  # gaps filled, ends held
        f = np.maximum.accumulate(f)  # increasing, for np.interp
        _calibrations[voice] = (pitches, f + np.arange(f.size) * 1e-3)
    return _calibrations[voice]


def _fit_note(audio: np.ndarray, sample_rate: int, track, sounding: int, length: int) -> np.ndarray:
    """The syllable made `sounding` samples long (the vowel stretched, or the whole compressed), faded at its
    ends and padded with silence to `length`."""
    import librosa

    if audio.size >= sounding:
        y = librosa.effects.time_stretch(audio, rate=audio.size / sounding) if audio.size > sounding else audio
    else:
        voiced = np.concatenate([[False], track.voiced, [False]]).astype(np.int8)
        edges = np.flatnonzero(np.diff(voiced))
        runs = edges.reshape(-1, 2) if edges.size else np.zeros((0, 2), int)
        if len(runs):
            a, b = max(runs, key=lambda r: r[1] - r[0])
            a = min(int(a * track.hop_s * sample_rate), audio.size)
            b = min(int(b * track.hop_s * sample_rate), audio.size)
        else:
            a, b = 0, audio.size
        vowel, rest = audio[a:b], audio.size - (b - a)
        want = max(sounding - rest, 1)
        if vowel.size >= 2048:
            vowel = librosa.effects.time_stretch(vowel, rate=vowel.size / want)
        else:
            vowel = np.resize(vowel, want)  # too short to stretch: repeated
        y = np.concatenate([audio[:a], vowel, audio[b:]])
    y = np.asarray(y[:sounding], np.float32).copy()
    edge = min(int(_EDGE_S * sample_rate), y.size // 2)
    if edge:
        ramp = np.linspace(0.0, 1.0, edge, dtype=np.float32)
        y[:edge] *= ramp
        y[-edge:] *= ramp[::-1]
    return np.concatenate([y, np.zeros(max(length - y.size, 0), np.float32)])
