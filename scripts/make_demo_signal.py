#!/usr/bin/env python3
"""Builds the README's demo signal from FSDD *test* takes only (takes 0-4).

Digits are joined with random 0.3-1.5 s gaps of low noise (about -60 dBFS), the
way a person pauses between digits. Standard library only, seeded, so the file
is reproducible:

  python3 scripts/make_demo_signal.py --data ../shared/data/fsdd \
      --digits 4,0,7,1,9,3 --speakers george,jackson,lucas,nicolas,yweweler \
      --seed 7 --out tests/data/demo_digits.wav

Prints the digit sequence and each digit's sample range (the ground truth).
"""
import argparse
import random
import struct
import wave


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getframerate() == 8000, path
        data = w.readframes(w.getnframes())
    return list(struct.unpack("<%dh" % (len(data) // 2), data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--digits", default="4,0,7,1,9,3")
    ap.add_argument("--speakers", default="george,jackson,lucas,nicolas,yweweler")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    speakers = a.speakers.split(",")
    rate = 8000

    def gap():
        n = int(rng.uniform(0.3, 1.5) * rate)
        return [int(rng.gauss(0, 30)) for _ in range(n)]

    out = gap()
    for i, d in enumerate(a.digits.split(",")):
        spk = speakers[i % len(speakers)]
        take = rng.randrange(0, 5)  # test takes only
        clip = read_wav("%s/%s_%s_%d.wav" % (a.data, d, spk, take))
        print("digit %s  %s take %d  samples [%d, %d)" % (d, spk, take, len(out), len(out) + len(clip)))
        out += clip
        out += gap()
    out = [max(-32768, min(32767, s)) for s in out]
    with wave.open(a.out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<%dh" % len(out), *out))
    print("wrote %s: %d samples, %.2f s" % (a.out, len(out), len(out) / rate))


if __name__ == "__main__":
    main()
