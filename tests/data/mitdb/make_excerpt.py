#!/usr/bin/env python3
"""Cuts the first SECONDS of an MIT-BIH record (format 212, MIT annotations).

Usage: make_excerpt.py SRC_DIR RECORD SECONDS OUT_DIR {lf|crlf}

- .dat: the first SECONDS * fs frames, byte for byte (3 bytes per frame of
  two format-212 signals).
- .hea: the original with NSAMP set to the excerpt's length and each signal's
  checksum (16-bit signed sum of its samples, header(5)) recomputed; comment
  lines kept, one comment line added saying what this is; line ends as asked.
- .atr: the original bytes up to the first annotation at or after the cut,
  keeping each annotation's trailing SUB/CHN/NUM/AUX words and leaving out a
  SKIP that belongs to the next annotation, then a 0 word (end of file). The
  kept annotations keep their original encoding.
"""
import sys


def word(b, i):
    return b[i] | (b[i + 1] << 8)


def cut_annotations(b, end_sample):
    t, i = 0, 0
    skip_start = None  # offset of a SKIP that opens the next annotation's group
    while True:
        w = word(b, i)
        if w == 0:
            return b[:i] + b'\0\0'
        a, d = w >> 10, w & 0x3FF
        if a == 59:  # SKIP: 32-bit interval, high word first
            if skip_start is None:
                skip_start = i
            v = (word(b, i + 2) << 16) | word(b, i + 4)
            t += v - (1 << 32) if v >= 1 << 31 else v
            i += 6
        elif a in (60, 61, 62):  # NUM, SUB, CHN: modify the annotation before
            i += 2
        elif a == 63:  # AUX: d bytes, padded to even
            i += 2 + d + (d & 1)
        else:
            t += d
            if t >= end_sample:
                return b[:i if skip_start is None else skip_start] + b'\0\0'
            skip_start = None
            i += 2


def main():
    src, rec, seconds, out, ends = sys.argv[1:6]
    eol = '\r\n' if ends == 'crlf' else '\n'
    lines = open(f'{src}/{rec}.hea', newline='').read().replace('\r\n', '\n').split('\n')
    lines = [l for l in lines if l != '']
    head = lines[0].split()
    nsig, fs = int(head[1]), float(head[2])
    frames = int(round(fs * float(seconds)))
    assert nsig == 2, 'two signals expected'
    nbytes = frames * 3
    dat = open(f'{src}/{rec}.dat', 'rb').read()[:nbytes]
    assert len(dat) == nbytes
    sums = [0, 0]
    for k in range(0, nbytes, 3):
        b0, b1, b2 = dat[k], dat[k + 1], dat[k + 2]
        s0 = b0 | ((b1 & 0xF) << 8)
        s1 = b2 | ((b1 >> 4) << 8)
        sums[0] += s0 - 4096 if s0 >= 2048 else s0
        sums[1] += s1 - 4096 if s1 >= 2048 else s1
    cks = [((s + 32768) & 0xFFFF) - 32768 for s in sums]
    head[3] = str(frames)
    outl = [' '.join(head)]
    sig = 0
    for l in lines[1:]:
        if l.lstrip().startswith('#'):
            outl.append(l)
            continue
        f = l.split(' ', 8)
        f[6] = str(cks[sig])
        sig += 1
        outl.append(' '.join(f))
    outl.append(f'# Excerpt: first {seconds} s ({frames} frames) of MIT-BIH record {rec}')
    with open(f'{out}/{rec}.hea', 'w', newline='') as h:
        h.write(eol.join(outl) + eol)
    with open(f'{out}/{rec}.dat', 'wb') as d:
        d.write(dat)
    atr = open(f'{src}/{rec}.atr', 'rb').read()
    with open(f'{out}/{rec}.atr', 'wb') as a:
        a.write(cut_annotations(atr, frames))


if __name__ == '__main__':
    main()
