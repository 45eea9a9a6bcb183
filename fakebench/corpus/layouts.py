"""What each dataset importer expects on disk: shown by `fakebench corpus import --help`, in errors and the README.

Kept apart from `fakebench.corpus.importers` so the command line can show it without importing pandas.
"""

LAYOUTS: dict[str, str] = {
    "grid": (
        "GRID: one folder per speaker, s1 ... s34, holding the videos (mpg, mp4, avi, mov), e.g. SRC/s1/bbaf2n.mpg "
        "or SRC/video/s1/bbaf2n.mpg; the audio is separate, a wav of the same name under a speaker folder "
        "anywhere in SRC, e.g. SRC/audio/s1/bbaf2n.wav. Identity: the speaker."),
    "crema-d": (
        "CREMA-D: flat folders of files named ACTOR_SENTENCE_EMOTION_LEVEL, e.g. SRC/VideoFlash/1001_DFA_ANG_XX.flv "
        "(flv, mp4 or avi) with the audio apart in SRC/AudioWAV/1001_DFA_ANG_XX.wav. Identity: the actor; "
        "sentence, emotion and level are kept."),
    "lrs": (
        "LRS2/LRS3: one folder per video id (LRS2) or speaker id (LRS3) of numbered mp4 clips with their audio "
        "inside, optionally under a subset folder: SRC/main/6330311066473698535/00011.mp4 or "
        "SRC/trainval/0Fi83BHQsMA/00002.mp4 (a transcript .txt beside each is kept as text). Identity: the folder "
        "(for LRS2 a programme id, the closest to an identity its layout gives)."),
    "fakeavceleb": (
        "FakeAVCeleb: the four category folders RealVideo-RealAudio, FakeVideo-RealAudio, RealVideo-FakeAudio, "
        "FakeVideo-FakeAudio, each as CATEGORY/RACE/GENDER/IDENTITY/FILE.mp4, e.g. "
        "SRC/FakeVideo-FakeAudio/African/men/id00076/00109_id00166_wavtolip.mp4; the method comes from "
        "SRC/meta_data.csv (columns method, type, source, path) when present, else 'unknown'. Identity: the id "
        "folder; label real only for RealVideo-RealAudio; category and method are kept."),
    "folder": (
        "folder: SRC/real/ and SRC/fake/, each with one subfolder per identity (SRC/real/alice/clip1.mp4); a clip "
        "directly in real/ or fake/ is its own identity. Or a CSV file as SRC with columns path and label "
        "(real|fake), optionally identity, generator and split; paths relative to the CSV's folder. A video "
        "without an audio track takes the audio file of the same name beside it (clip1.wav, .flac, .m4a, .mp3 or "
        ".ogg); with neither it is imported as visual-only (has_audio false; audio-driven steps skip it)."),
}
