"""Evaluation: likelihood in nats per frame, and music statistics of generated pieces against the data's.

Likelihood (lower is better)::

    metrics.nll_per_frame(logits, rolls, mask)       # an independent-Bernoulli model's NLL, nats/frame
    metrics.marginal_nll(train_rolls, test_rolls)    # the trivial floor: one fixed probability per key

Music statistics (a roll is a ``(T, P)`` 0/1 array; a list of rolls counts all their frames together)::

    metrics.polyphony(roll)              # mean number of sounding keys per frame
    metrics.compare_stats(generated, reference)   # every statistic side by side

Statistics of bars (an array ``(n_bars, steps_per_bar, n_pitches)``, lesson 08's music GAN)::

    metrics.qualified_note_rate(bars)    # fraction of notes at least 3 steps long
    metrics.compare_bars({"data": real, "GAN": fake}, "data")   # every bar statistic side by side

Copying and voice leading (lesson 09's capstone)::

    metrics.longest_common_ngram(a, b)   # the longest contiguous run two sequences share
    metrics.NgramIndex(train).nearest(metrics.intervals(pitches))   # the training piece a melody copies most
    metrics.parallel_fifths_octaves(voices)   # a (V, T) voice array's parallel perfect fifths and octaves

The code lives in :mod:`.likelihood`, :mod:`.rolls`, :mod:`.bars`, :mod:`.originality` and
:mod:`.voiceleading`; every public name is here.

Lesson: 04_polyphonic_chorales (also used by 08_music_gan and 09_capstone)
"""
from __future__ import annotations

from .bars import (bar_polyphony, bar_stats, compare_bars, describe_bars, empty_bar_rate, in_scale_rate,
                   pitch_class_distance, pitch_class_histogram_bars, qualified_note_rate, random_bars,
                   shuffled_bars, used_pitch_classes)
from .originality import NgramIndex, copy_threshold, intervals, longest_common_ngram, melody_pitches
from .likelihood import marginal_nll, marginal_probs, nll_per_frame
from .rolls import (compare_stats, describe_stats, empty_frame_rate, mean_note_length, music_stats, note_density,
                    pitch_class_entropy, pitch_class_histogram, pitch_range, keys_per_frame, polyphony,
                    polyphony_rate, polyphony_std)
from .voiceleading import (BACH_RANGES, note_agreement, out_of_range, parallel_fifths_octaves, spacing_errors,
                           voice_crossings, voice_leading_report)

__all__ = ["nll_per_frame", "marginal_probs", "marginal_nll", "polyphony", "empty_frame_rate", "note_density",
           "mean_note_length", "pitch_range", "pitch_class_histogram", "pitch_class_entropy", "music_stats",
           "compare_stats", "describe_stats", "keys_per_frame", "polyphony_std", "polyphony_rate",
           "empty_bar_rate", "used_pitch_classes", "qualified_note_rate", "bar_polyphony", "in_scale_rate",
           "pitch_class_histogram_bars", "pitch_class_distance", "bar_stats", "compare_bars", "describe_bars",
           "random_bars", "shuffled_bars", "longest_common_ngram", "intervals", "melody_pitches", "NgramIndex",
           "copy_threshold", "parallel_fifths_octaves", "voice_crossings", "spacing_errors", "out_of_range",
           "note_agreement", "voice_leading_report", "BACH_RANGES"]
