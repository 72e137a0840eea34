"""Word and character error counts of a transcript against its reference, and their corpus sums.

One normalisation everywhere (speech recognition cases and the intelligibility metric): lowercase,
hyphens and slashes to spaces, punctuation removed, spaces collapsed (jiwer's transforms). Counts,
not rates, are kept per case, so a corpus WER is the sum of the errors over the sum of the reference
words, the Open ASR Leaderboard's (and jiwer's) corpus figure, not a mean of per-sentence rates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def normalise(text: str) -> str:
    """Lowercase, hyphens to spaces, no punctuation, single spaces, stripped."""
    import jiwer

    transform = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.SubstituteRegexes({r"[-\u2010-\u2015/]": " "}),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
        ]
    )
    return str(transform(text))


def error_counts(reference: str, hypothesis: str) -> dict[str, Any] | None:
    """Word and character alignment counts of ``hypothesis`` against ``reference``, normalised.

    ``None`` when the reference has no words after normalisation (nothing to count against).
    Keys: ``reference_words``, ``hits``, ``substitutions``, ``deletions``, ``insertions``,
    ``reference_chars``, ``char_errors``, ``exact`` (the normalised texts are equal), ``wer``,
    ``cer``, and the normalised ``reference`` and ``hypothesis``.
    """
    import jiwer

    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return None
    words = jiwer.process_words(ref, hyp)
    if hyp:
        chars = jiwer.process_characters(ref, hyp)
        char_errors = chars.substitutions + chars.deletions + chars.insertions
    else:
        char_errors = len(ref)
    n_words = words.hits + words.substitutions + words.deletions
    word_errors = words.substitutions + words.deletions + words.insertions
    return {
        "reference_words": n_words,
        "hits": words.hits,
        "substitutions": words.substitutions,
        "deletions": words.deletions,
        "insertions": words.insertions,
        "reference_chars": len(ref),
        "char_errors": char_errors,
        "exact": ref == hyp,
        "wer": word_errors / n_words,
        "cer": char_errors / len(ref),
        "reference": ref,
        "hypothesis": hyp,
    }


def corpus_rates(counts: Iterable[dict[str, Any]]) -> dict[str, float] | None:
    """Corpus WER, CER and sentence accuracy from per-utterance :func:`error_counts`.

    Sums of errors over sums of reference words (characters); sentence accuracy is the share of
    utterances recognised exactly. ``None`` for no utterances.
    """
    rows = list(counts)
    if not rows:
        return None
    words = sum(r["reference_words"] for r in rows)
    chars = sum(r["reference_chars"] for r in rows)
    errors = sum(r["substitutions"] + r["deletions"] + r["insertions"] for r in rows)
    return {
        "wer": errors / words if words else 0.0,
        "cer": sum(r["char_errors"] for r in rows) / chars if chars else 0.0,
        "sentence_accuracy": sum(1 for r in rows if r["exact"]) / len(rows),
        "utterances": float(len(rows)),
        "reference_words": float(words),
        "substitutions": float(sum(r["substitutions"] for r in rows)),
        "deletions": float(sum(r["deletions"] for r in rows)),
        "insertions": float(sum(r["insertions"] for r in rows)),
    }
