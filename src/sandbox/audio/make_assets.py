#!/usr/bin/env python3
"""Makes the sandbox's audio assets: short, music-like MP3 phrases that the
sandbox (src/sandbox/audio/mod.rs) joins at frame boundaries into takes.

Run from anywhere:  python3 src/sandbox/audio/make_assets.py
Needs: Python 3 with numpy, and LAME 3.100 (Debian: apt-get install lame).
Writes normal.mp3, quiet.mp3 and clipped.mp3 beside this script, then
checks them: frame format, joins, loudness and peaks (see README.md).

What it makes
-------------
Four 4-bar phrases in C major at 125 bpm (a bar is 1.92 s = exactly 80
MP3 frames of 1152 samples at 48 kHz), each a loop with chords (a detuned
pad), a bass line, a lead melody and drums (kick, snare, hats, crash),
with their own dynamics:

  A  C  G  Am F      verse: steady groove, -14 LUFS-ish
  B  Am F  C  G      lift: busier hats, new melody, a little louder
  C  Dm7 G7 Cmaj7 .  breakdown: no kick, soft pad and melody, quieter
  D  F  G  Em Am     chorus: full drums, snare fill, crash, loudest

normal.mp3 holds A B C D, mastered to about -14 LUFS with a peak limiter
(true peak under -1 dBTP after encoding). quiet.mp3 holds A and B 17 dB
down (about -30 LUFS). clipped.mp3 holds B and D driven 15 dB into a hard
clip at full scale: many samples at 0 dBFS, and a true peak above 0 dBTP
once encoded (the codec's ringing overshoots the clipped edges).

How it is encoded, and why
--------------------------
MPEG-1 Layer III, 48 kHz, mono, CBR 64 kbit/s: every frame is exactly
144 * 64000 / 48000 = 192 bytes, never padded, with the same 4-byte header.
`--nores` turns off the bit reservoir, so every frame's main data is in
the frame itself (main_data_begin = 0) and any frame decodes without the
one before it: frames can be cut and joined anywhere. `-t` writes no
Xing/LAME info frame, and no ID3 tag is written.

A decoder's output lags LAME's input by 1105 samples (576 of encoder delay
plus 529 of decoder delay). Each phrase is encoded as a loop with context:
the last 1199 samples of the loop, the loop, then three frames of its start.
1199 + 1105 = 2 * 1152, so frame 2 of the output begins exactly at the
loop's first sample; frames 2 .. 2 + 320 are kept and the rest (the delay,
the context and LAME's end padding) dropped. Bars of one phrase therefore
join exactly; where two phrases meet, only the codec's 12 ms overlap
differs from a continuous encoding (checked below).

The synthesis is deterministic (fixed seeds), so the same numpy and LAME
versions give the same bytes.
"""

import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

SR = 48_000
FRAME = 1152  # samples per MPEG-1 Layer III frame
FRAME_BYTES = 192  # 144 * 64 kbit/s / 48 kHz
HEADER = bytes([0xFF, 0xFB, 0x54, 0xC4])  # MPEG-1 L3, 64k, 48k, mono, original
BAR_FRAMES = 80
BAR = BAR_FRAMES * FRAME  # 92160 samples = 1.92 s
BEAT = BAR // 4  # 0.48 s: 125 bpm
SIXTEENTH = BEAT // 4
BARS = 4  # per phrase
PHRASE = BARS * BAR
DELAY = 576 + 529  # LAME's encoder delay plus the decoder's
PRE = 2 * FRAME - DELAY  # context before the loop: 1199 samples
POST = 3 * FRAME

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(20240601)


def hz(midi):
    return 440.0 * 2 ** ((midi - 69) / 12)


def env(n, attack, release, decay=None):
    """Attack-sustain-release envelope of n samples (times in seconds); with
    decay, an exponential decay after the attack instead of a sustain."""
    t = np.arange(n) / SR
    e = np.ones(n)
    a = max(1, int(attack * SR))
    e[:a] = np.linspace(0, 1, a)
    if decay is not None:
        e[a:] = np.exp(-(t[a:] - t[a]) / decay)
    r = min(n, max(1, int(release * SR)))
    e[n - r :] *= np.linspace(1, 0, r)
    return e


def osc(freq, n, harmonics, vibrato=0.0):
    """A band-limited tone: harmonics is a list of (number, amplitude)."""
    t = np.arange(n) / SR
    f = freq * (1 + vibrato * np.sin(2 * np.pi * 5.2 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR
    out = np.zeros(n)
    for k, amp in harmonics:
        if k * freq < 15_000:
            out += amp * np.sin(k * phase)
    return out


SAW = [(k, 1 / k**1.4) for k in range(1, 12)]
SQUARE = [(k, 1 / k) for k in (1, 3, 5, 7, 9)]
BASS = [(1, 1.0), (2, 0.45), (3, 0.2), (4, 0.08)]


def add(buf, start, sig):
    """Adds sig at start, wrapping round the end: phrases are loops."""
    n = len(buf)
    start %= n
    first = min(len(sig), n - start)
    buf[start : start + first] += sig[:first]
    rest = sig[first:]
    while len(rest):
        take = min(len(rest), n)
        buf[:take] += rest[:take]
        rest = rest[take:]


def pad(buf, notes, start, length, amp):
    n = length + int(0.4 * SR)
    sig = np.zeros(n)
    for m in notes:
        for detune in (-0.004, 0.004):
            sig += osc(hz(m) * (1 + detune), n, SAW)
    sig *= env(n, 0.06, 0.4) * amp / len(notes)
    add(buf, start, sig)


def bass(buf, note, start, length, amp):
    n = length
    sig = osc(hz(note), n, BASS) * env(n, 0.005, 0.03, decay=0.35) * amp
    add(buf, start, sig)


def lead(buf, note, start, length, amp):
    n = length + int(0.15 * SR)
    sig = osc(hz(note), n, SQUARE, vibrato=0.003) * env(n, 0.01, 0.15) * amp
    add(buf, start, sig)


def noise(n):
    return RNG.standard_normal(n)


def kick(buf, start, amp):
    n = int(0.35 * SR)
    t = np.arange(n) / SR
    f = 48 + 110 * np.exp(-t / 0.035)
    sig = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / 0.16)
    sig[:48] *= np.linspace(0, 1, 48)
    add(buf, start, sig * amp)


def snare(buf, start, amp):
    n = int(0.25 * SR)
    t = np.arange(n) / SR
    body = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.04)
    rattle = np.diff(noise(n + 1)) * 0.5 * np.exp(-t / 0.07)
    add(buf, start, (0.6 * body + rattle) * amp)


def hat(buf, start, amp, open_=False):
    n = int((0.25 if open_ else 0.06) * SR)
    t = np.arange(n) / SR
    hiss = np.diff(noise(n + 2), 2) * 0.25
    add(buf, start, hiss * np.exp(-t / (0.09 if open_ else 0.015)) * amp)


def crash(buf, start, amp):
    n = int(1.6 * SR)
    t = np.arange(n) / SR
    hiss = np.diff(noise(n + 1)) * 0.35
    add(buf, start, hiss * np.exp(-t / 0.5) * amp)


# Chords as MIDI notes (voiced around middle C), bass roots, per phrase.
C, G, AM, F = [60, 64, 67], [59, 62, 67], [57, 60, 64], [57, 60, 65]
DM7, G7, CMAJ7, EM = [57, 60, 62, 65], [59, 62, 65, 67], [59, 60, 64, 67], [59, 64, 67]
PHRASES = {
    "A": dict(chords=[C, G, AM, F], roots=[36, 43, 45, 41], level=0.0,
              melody=[(0, 72, 2), (2, 74, 2), (4, 76, 4), (8, 74, 2), (10, 71, 2), (12, 67, 4),
                      (16, 69, 2), (18, 72, 2), (20, 76, 3), (23, 74, 1), (24, 72, 4), (28, 69, 4)],
              kick=[0, 8], snare=[4, 12], hats=2, fill=False, crash=False),
    "B": dict(chords=[AM, F, C, G], roots=[45, 41, 36, 43], level=1.0,
              melody=[(0, 76, 1), (1, 77, 1), (2, 76, 2), (4, 72, 2), (6, 69, 2), (8, 72, 3),
                      (11, 74, 1), (12, 76, 4), (16, 79, 2), (18, 77, 2), (20, 76, 2), (22, 74, 2),
                      (24, 71, 4), (28, 74, 2), (30, 71, 2)],
              kick=[0, 6, 8], snare=[4, 12], hats=1, fill=False, crash=True),
    "C": dict(chords=[DM7, G7, CMAJ7, CMAJ7], roots=[38, 43, 36, 36], level=-5.0,
              melody=[(2, 74, 4), (8, 77, 6), (18, 71, 4), (24, 72, 8)],
              kick=[], snare=[], hats=4, fill=False, crash=False),
    "D": dict(chords=[F, G, EM, AM], roots=[41, 43, 40, 45], level=2.0,
              melody=[(0, 81, 2), (2, 79, 2), (4, 77, 2), (6, 76, 2), (8, 79, 4), (12, 76, 4),
                      (16, 77, 2), (18, 76, 2), (20, 74, 2), (22, 72, 2), (24, 76, 6), (30, 72, 2)],
              kick=[0, 4, 8, 12], snare=[4, 12], hats=1, fill=True, crash=True),
}


def render(spec):
    """One phrase as a seamless loop of PHRASE samples, before mastering."""
    buf = np.zeros(PHRASE)
    eighth = 2 * SIXTEENTH
    for bar in range(BARS):
        b0 = bar * BAR
        accent = 1.0 if bar % 2 == 0 else 0.85  # a little light and shade
        pad(buf, spec["chords"][bar], b0, BAR, 0.16 * accent)
        root = spec["roots"][bar]
        for step in range(8):  # eighth-note bass, octave jumps on the offbeats
            note = root + (12 if step % 4 == 3 else 0)
            bass(buf, note, b0 + step * eighth, eighth, 0.32 * accent * (1.0 if step % 2 == 0 else 0.75))
        for k in spec["kick"]:
            kick(buf, b0 + k * SIXTEENTH, 0.75)
        last_bar = bar == BARS - 1
        for s in spec["snare"]:
            snare(buf, b0 + s * SIXTEENTH, 0.45)
        if spec["fill"] and last_bar:
            for s in range(12, 16):
                snare(buf, b0 + s * SIXTEENTH, 0.2 + 0.08 * (s - 12))
        step = spec["hats"]
        for s in range(0, 16, step):
            hat(buf, b0 + s * SIXTEENTH, (0.22 if s % 4 == 0 else 0.14), open_=(s == 14 and step < 4))
        if spec["crash"] and bar == 0:
            crash(buf, b0, 0.35)
    for start, note, sixteenths in spec["melody"]:
        lead(buf, note, start * SIXTEENTH, sixteenths * SIXTEENTH - int(0.02 * SR), 0.12)
    return buf * 10 ** (spec["level"] / 20)


# --- measurement (BS.1770-4 integrated loudness, 4x true peak), numpy only ---

def k_weight(x):
    """Applies the K-weighting filter (48 kHz coefficients of BS.1770) in the
    frequency domain: the filters' responses decay in well under a second,
    so the circular convolution of a long signal is exact enough."""
    stages = [
        ([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585]),
        ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621]),
    ]
    n = len(x) + SR
    spec = np.fft.rfft(x, n)
    z = np.exp(-1j * np.pi * np.arange(len(spec)) / (len(spec) - 1))
    for b, a in stages:
        spec *= (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)
    return np.fft.irfft(spec, n)[: len(x)]


def lufs(x):
    y = k_weight(x)
    block, hop = int(0.4 * SR), int(0.1 * SR)
    if len(y) < block:
        return -np.inf
    power = np.array([np.mean(y[i : i + block] ** 2) for i in range(0, len(y) - block + 1, hop)])
    loud = -0.691 + 10 * np.log10(power + 1e-20)
    power = power[loud > -70]
    if not len(power):
        return -np.inf
    rel = -0.691 + 10 * np.log10(np.mean(power)) - 10
    loud = -0.691 + 10 * np.log10(power)
    return -0.691 + 10 * np.log10(np.mean(power[loud > rel]))


def true_peak_db(x):
    up = np.fft.irfft(np.fft.rfft(x), 4 * len(x)) * 4
    return 20 * np.log10(np.max(np.abs(up)) + 1e-20)


def peak_db(x):
    return 20 * np.log10(np.max(np.abs(x)) + 1e-20)


def limit(x, ceiling):
    """A look-ahead peak limiter: the gain never lets a peak over ceiling."""
    w = int(0.004 * SR)
    win = np.lib.stride_tricks.sliding_window_view
    env_ = np.max(win(np.pad(np.abs(x), (w, w), mode="wrap"), 2 * w + 1), axis=1)
    gain = np.minimum(1.0, ceiling / np.maximum(env_, 1e-9))
    gain = np.min(win(np.pad(gain, (w, w), mode="wrap"), 2 * w + 1), axis=1)
    kernel = np.ones(2 * w + 1) / (2 * w + 1)
    smooth = np.convolve(np.pad(gain, (w, w), mode="wrap"), kernel, mode="valid")
    return x * np.minimum(smooth, gain)


# --- encoding ---

def write_wav(path, x):
    pcm = np.round(np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def read_wav(path):
    with wave.open(path, "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0


def lame(*args):
    subprocess.run(["lame", "--quiet", *args], check=True)


def encode_loop(loop, tmp):
    """The loop's MP3 frames, exactly len(loop) / FRAME of them, aligned so
    frame i decodes samples i*FRAME.. of the loop (see the module docs)."""
    assert len(loop) % FRAME == 0
    x = np.concatenate([loop[-PRE:], loop, loop[:POST]])
    wav, mp3 = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.mp3")
    write_wav(wav, x)
    lame("-t", "--nores", "--cbr", "-b", "64", "-m", "m", "-q", "2",
         "--resample", "48", "--noreplaygain", wav, mp3)
    data = open(mp3, "rb").read()
    assert len(data) % FRAME_BYTES == 0, "CBR frames of 192 bytes, no padding"
    frames = [data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES)]
    for f in frames:
        assert f[:4] == HEADER, f[:4].hex()
        assert f[4] == 0 and f[5] & 0x80 == 0, "main_data_begin 0: no reservoir"
    keep = frames[2 : 2 + len(loop) // FRAME]
    assert len(keep) == len(loop) // FRAME
    return b"".join(keep)


def decode(data, tmp):
    """Raw decoder output: LAME's decoder skips its 529-sample delay, so it is
    put back to make frame i decode to samples i*FRAME.. ."""
    mp3, wav = os.path.join(tmp, "d.mp3"), os.path.join(tmp, "d.wav")
    open(mp3, "wb").write(data)
    lame("--decode", mp3, wav)
    y = read_wav(wav)
    return np.concatenate([np.zeros(529), y])[: len(data) // FRAME_BYTES * FRAME]


def master(loops, target):
    """The four phrases at one gain that puts the song at target LUFS,
    under a -2 dBFS limiter (the gain is made up for what it takes off)."""
    ceiling = 10 ** (-2.0 / 20)
    song = np.concatenate([loops[n] for n in "ABCD"])
    gain = 10 ** ((target - lufs(song)) / 20)
    normal = {n: limit(loops[n] * gain, ceiling) for n in "ABCD"}
    for _ in range(3):
        song = np.concatenate([normal[n] for n in "ABCD"])
        trim = 10 ** ((target - lufs(song)) / 20)
        normal = {n: limit(normal[n] * trim, ceiling) for n in "ABCD"}
    return normal


def main():
    tmp = tempfile.mkdtemp()
    loops = {name: render(spec) for name, spec in PHRASES.items()}
    # Master: one gain for all four so the phrases keep their dynamics, set
    # so the whole song decodes at -14 LUFS, then a limiter under -2 dBFS.
    # The codec takes some high-frequency energy away, so the target is
    # corrected by what the encoded song measures, twice.
    target = -14.0
    for _ in range(2):
        normal = master(loops, target)
        data = b"".join(encode_loop(normal[n], tmp) for n in "ABCD")
        target += -14.0 - lufs(decode(data, tmp))
    normal = master(loops, target)
    quiet = {n: normal[n] * 10 ** (-17 / 20) for n in "AB"}
    clipped = {n: np.clip(normal[n] * 10 ** (15 / 20), -1, 1) for n in "BD"}

    sets = {"normal": (normal, "ABCD"), "quiet": (quiet, "AB"), "clipped": (clipped, "BD")}
    out = {}
    for name, (phrases, order) in sets.items():
        data = b"".join(encode_loop(phrases[n], tmp) for n in order)
        out[name] = data
        with open(os.path.join(HERE, f"{name}.mp3"), "wb") as f:
            f.write(data)

    # Checks on what the sandbox will serve: each set decoded as stored,
    # and phrases joined in an order they were not encoded in.
    print(f"{'asset':<10}{'bytes':>8}{'frames':>8}{'LUFS':>8}{'peak':>8}{'true pk':>9}{'at 0dBFS':>10}")
    for name, data in out.items():
        y = decode(data, tmp)
        full = int(np.sum(np.abs(y) >= 32767 / 32768))
        print(f"{name:<10}{len(data):>8}{len(data) // FRAME_BYTES:>8}{lufs(y):>8.1f}"
              f"{peak_db(y):>8.1f}{true_peak_db(y):>9.1f}{full:>10}")
    p = len(out["normal"]) // 4
    phrase = lambda i: out["normal"][i * p : (i + 1) * p]
    joined = phrase(3) + phrase(0) + phrase(2) + phrase(1)  # D A C B
    y = decode(joined, tmp)
    want = np.concatenate([normal[n] for n in "DACB"])
    err = y - want
    for j in range(1, 4):  # at each join, versus the rest of the take
        at = j * PHRASE
        near = np.sqrt(np.mean(err[at - FRAME : at + FRAME] ** 2))
        print(f"join {j}: error rms {20 * np.log10(near + 1e-20):.1f} dBFS near the join")
    print(f"away from the joins: error rms {20 * np.log10(np.sqrt(np.mean(err[FRAME:PHRASE - FRAME] ** 2))):.1f} dBFS "
          f"(signal {20 * np.log10(np.sqrt(np.mean(want ** 2))):.1f} dBFS)")
    total = sum(len(d) for d in out.values())
    print(f"total {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
