"""A blind listening test: can you tell the human-written clip from the generated one?

Lesson: 08_music_gan
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..errors import CourseError
from ..music import trim
from ._common import to_music, wav_bytes
from .player import _check_seconds
from .synth import _render

__all__ = ["ABTest"]


class ABTest(widgets.VBox):
    """Blind A/B listening: each round plays one real and one generated clip in random order.

    Lesson: 08_music_gan

    Press "A is human" or "B is human"; the widget says whether you were right and keeps the
    score. Scoring near 50% over many rounds means the generator fools you.

    Args:
        real_pieces: a list of human-written pieces (anything ``course.music.as_music`` accepts).
        generated_pieces: a list of generated pieces.
        rounds: how many rounds to play.
        seed: picks the pieces and the A/B order (same seed, same test).
        clip_seconds: both clips of a round are cut to the same length, at most this many seconds.
        sample_rate: audio samples per second.

    Attributes:
        score: rounds answered correctly; ``rounds_played``: rounds answered;
        ``history``: one dict per answered round; ``finished``: all rounds answered.
    Use :meth:`answer` (``"A"`` or ``"B"``) to answer without clicking.
    """

    def __init__(self, real_pieces, generated_pieces, rounds: int = 5, seed: int = 0, *,
                 clip_seconds: float = 10.0, sample_rate: int = 16000):
        real = _pieces(real_pieces, "real_pieces")
        fake = _pieces(generated_pieces, "generated_pieces")
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise CourseError(f"rounds must be a whole number >= 1, got {rounds!r}.")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise CourseError(f"seed must be a whole number, got {seed!r}.")
        self.clip_seconds = _check_seconds(clip_seconds, "clip_seconds")
        self.sample_rate = int(sample_rate)
        self.real, self.generated = real, fake
        self.rounds = int(rounds)
        rng = np.random.default_rng(int(seed))
        # each round: (real index, generated index, which label is human); pieces cycle through a shuffle
        ri = np.concatenate([rng.permutation(len(real)) for _ in range(-(-self.rounds // len(real)))])[:self.rounds]
        gi = np.concatenate([rng.permutation(len(fake)) for _ in range(-(-self.rounds // len(fake)))])[:self.rounds]
        human = rng.integers(0, 2, self.rounds)
        self._plan = [(int(r), int(g), "AB"[int(h)]) for r, g, h in zip(ri, gi, human)]
        self.score = 0
        self.rounds_played = 0
        self.history: list[dict] = []
        self.header = widgets.HTML()
        self.clip_a = widgets.Audio(format="wav", autoplay=False, controls=True)
        self.clip_b = widgets.Audio(format="wav", autoplay=False, controls=True)
        self.button_a = widgets.Button(description="A is human", button_style="info")
        self.button_b = widgets.Button(description="B is human", button_style="info")
        self.button_a.on_click(lambda _: self.answer("A"))
        self.button_b.on_click(lambda _: self.answer("B"))
        self.feedback = widgets.HTML()
        self.tally = widgets.HTML()
        clips = widgets.HBox([widgets.VBox([widgets.HTML("<b>Clip A</b>"), self.clip_a]),
                              widgets.VBox([widgets.HTML("<b>Clip B</b>"), self.clip_b])])
        super().__init__(children=[self.header, clips, widgets.HBox([self.button_a, self.button_b]),
                                   self.feedback, self.tally])
        self._load_round()
        self._show_tally()

    # ------------------------------------------------------------------ state
    @property
    def finished(self) -> bool:
        return self.rounds_played >= self.rounds

    @property
    def accuracy(self) -> float:
        """Fraction of answered rounds that were right (0.0 before the first answer)."""
        return self.score / self.rounds_played if self.rounds_played else 0.0

    def clips(self) -> tuple:
        """The current round's two clips ``(audio_a, audio_b)`` as float32 arrays."""
        return self._audio

    def answer(self, choice: str) -> bool:
        """Answer the current round: ``"A"`` or ``"B"`` is the human-written clip. Returns whether it was right."""
        if self.finished:
            raise CourseError(f"The test is over ({self.score}/{self.rounds} right); make a new ABTest to play again.")
        choice = str(choice).strip().upper()[:1]
        if choice not in ("A", "B"):
            raise CourseError(f"Answer 'A' or 'B' (the clip you think a human wrote), got {choice!r}.")
        r, g, human = self._plan[self.rounds_played]
        correct = choice == human
        self.score += int(correct)
        self.rounds_played += 1
        real_name = self.real[r].title or f"real piece {r}"
        self.history.append({"round": self.rounds_played, "answer": choice, "human": human, "correct": correct,
                             "real_index": r, "generated_index": g})
        verdict = "<span style='color:#080'>Right!</span>" if correct else "<span style='color:#b00'>Not this time.</span>"
        self.feedback.value = (f"Round {self.rounds_played}: {verdict} Clip {human} was the human one "
                               f"({html.escape(real_name)}); clip {'B' if human == 'A' else 'A'} was generated "
                               f"piece {g}.")
        if self.finished:
            self.button_a.disabled = self.button_b.disabled = True
            self.header.value = "<b>Finished.</b>"
        else:
            self._load_round()
        self._show_tally()
        return correct

    # ------------------------------------------------------------------ display
    def _load_round(self) -> None:
        r, g, human = self._plan[self.rounds_played]
        real, fake = self.real[r], self.generated[g]
        # both clips start at their first note and last equally long, so length gives nothing away
        first = [min(n.start for n in m.notes) for m in (real, fake)]
        seconds = min(self.clip_seconds, real.duration - first[0], fake.duration - first[1])
        audio_real, audio_fake = (_render(trim(m, t0, t0 + seconds), self.sample_rate, max_seconds=seconds,
                                          what="ABTest")[0] for m, t0 in zip((real, fake), first))
        self._audio = (audio_real, audio_fake) if human == "A" else (audio_fake, audio_real)
        self.clip_a.value = wav_bytes(self._audio[0], self.sample_rate)
        self.clip_b.value = wav_bytes(self._audio[1], self.sample_rate)
        self.header.value = (f"<b>Round {self.rounds_played + 1} of {self.rounds}</b>: listen to both clips "
                             f"({seconds:.0f} s each). Which one did a human write?")

    def _show_tally(self) -> None:
        text = f"Score: {self.score} / {self.rounds_played}"
        if self.finished:
            text += (f" ({100 * self.accuracy:.0f}%). Guessing scores about 50%: the closer you are to it, "
                     "the better the generator fooled you.")
        self.tally.value = f"<b>{text}</b>"

    def __repr__(self) -> str:
        state = "finished" if self.finished else f"round {self.rounds_played + 1} of {self.rounds}"
        return (f"ABTest({len(self.real)} real, {len(self.generated)} generated pieces; {state}; "
                f"score {self.score}/{self.rounds_played}; run in Jupyter to listen)")


def _pieces(pieces, name: str) -> list:
    if pieces is None or isinstance(pieces, (str, bytes)) or not hasattr(pieces, "__len__"):
        raise CourseError(f"{name} must be a list of pieces, got {type(pieces).__name__}.")
    if hasattr(pieces, "notes") or hasattr(pieces, "shape"):
        raise CourseError(f"{name} must be a list of pieces; wrap a single piece in a list: [{name[:-1]}].")
    if len(pieces) == 0:
        raise CourseError(f"{name} is empty; the test needs at least one piece on each side.")
    return [to_music(p, f"ABTest ({name}[{i}])") for i, p in enumerate(pieces)]
