"""One conversation through a voice-assistant chain — speech → STT → LLM → TTS — timed from the
end of the user's speech.

Two modes:

- **sequential**: the recogniser gets the whole utterance, the LLM's whole answer is awaited
  (streamed when it can be, for TTFT and ITL), then TTS speaks the whole answer in one call; the
  answer's audio exists, and starts playing, when that call returns.
- **streaming**: a recogniser that can ``listen`` is fed the utterance in blocks at the pace of a
  microphone (a block is handed over when it has been spoken), so the end of speech is when the
  last block is due; one that cannot is given the utterance at the end of speech. The LLM
  streams; each sentence is handed to TTS the moment it is complete (:mod:`.sentences`), a TTS
  thread speaks the sentences in order (streaming when the engine can) while the LLM goes on, and
  the audio plays as it arrives (:mod:`.playback`).

All clocks are ``time.perf_counter_ns``, read in the thread that sees the event, next to the
engine call. A stage that raises ends the conversation with its error named by stage; nothing
that was measured before it is thrown away.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from voxbench.engine import Adapted, Chunk, Output, TextChunk, as_chunk
from voxbench.pipeline.playback import Playback
from voxbench.pipeline.sentences import SentenceSplitter, split_sentences
from voxbench.run.measure import TextStream

Mode = Literal["sequential", "streaming"]
MODES: tuple[Mode, ...] = ("sequential", "streaming")
BLOCK_MS = 100


@dataclass
class Components:
    """The three engines of a chain, loaded, and whether each can stream or listen."""

    stt: Adapted
    llm: Adapted
    tts: Adapted

    @property
    def listens(self) -> bool:
        """The recogniser takes live input (``listen``)."""
        return getattr(self.stt, "listen", None) is not None

    @property
    def llm_streams(self) -> bool:
        """The LLM streams its answer."""
        return self.llm.stream is not None

    @property
    def tts_streams(self) -> bool:
        """TTS streams audio."""
        return self.tts.stream is not None


@dataclass
class Conversation:
    """Raw times (``perf_counter_ns``) and results of one conversation; None: did not happen."""

    mode: Mode
    listened: bool = False
    speech_start_ns: int | None = None
    end_of_speech_ns: int = 0
    stt_first_partial_ns: int | None = None
    stt_done_ns: int | None = None
    transcript: str = ""
    llm_start_ns: int | None = None
    llm_first_token_ns: int | None = None
    llm_first_sentence_ns: int | None = None
    llm_done_ns: int | None = None
    token_times_ns: list[int] = field(default_factory=list)
    answer: str = ""
    tokens: int | None = None
    input_tokens: int | None = None
    tokens_source: str | None = None
    sentences: int = 0
    tts_first_text_ns: int | None = None  # the first text was ready for TTS
    tts_first_start_ns: int | None = None  # TTS began speaking it
    tts_busy_ns: int = 0
    tts_done_ns: int | None = None
    playback: Playback = field(default_factory=Playback)
    audio: list[np.ndarray] = field(default_factory=list)
    error: dict[str, str] | None = None
    ended_ns: int | None = None  # the conversation is over: answered, or failed

    def failed(self, stage: str, exc: BaseException) -> None:
        """Record the first failure, with the stage it happened in."""
        if self.error is None:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.error = {"stage": stage, "type": type(exc).__name__, "message": message[:500]}


def utterance_blocks(
    path: Path, sample_rate: int | None, block_ms: int = BLOCK_MS
) -> tuple[list[np.ndarray], int]:
    """The utterance as mono float32 blocks of ``block_ms`` at ``sample_rate`` (the file's own
    when None), read and resampled before any clock starts (a microphone delivers at its rate)."""
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sample_rate and sample_rate != rate:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), int(sample_rate))
        mono = resample_poly(mono, sample_rate // g, rate // g).astype(np.float32)
        rate = sample_rate
    step = max(1, rate * block_ms // 1000)
    return [mono[i : i + step] for i in range(0, len(mono), step)], int(rate)


def _paced(
    blocks: list[np.ndarray], rate: int, start_ns: int, conv: Conversation
) -> Iterator[np.ndarray]:
    """Yield each block when it has been spoken: block k once its last sample is due."""
    spoken = 0
    for block in blocks:
        spoken += len(block)
        _sleep_until(start_ns + round(spoken * 1e9 / rate))
        yield block
    conv.end_of_speech_ns = start_ns + round(spoken * 1e9 / rate)


def _sleep_until(ns: int) -> None:
    wait = (ns - time.perf_counter_ns()) / 1e9
    if wait > 0:
        time.sleep(wait)


def _recognise(
    components: Components,
    path: Path,
    conv: Conversation,
    listen: bool,
    speech_start_ns: int | None,
    utterance_s: float | None,
) -> None:
    stt = components.stt
    if listen:
        blocks, rate = utterance_blocks(path, getattr(stt, "input_sample_rate", None))
        text = TextStream()
        conv.listened = True
        start = speech_start_ns if speech_start_ns is not None else time.perf_counter_ns()
        conv.speech_start_ns = start
        total = sum(len(b) for b in blocks)
        conv.end_of_speech_ns = start + round(total * 1e9 / rate)  # the schedule's; set again
        hear = stt.listen
        assert hear is not None
        for item in hear(_paced(blocks, rate, start, conv), rate):
            now = time.perf_counter_ns()
            chunk = as_chunk(item, stt.engine)
            if not isinstance(chunk, TextChunk):
                raise TypeError("listen() yielded audio; a recogniser yields text")
            if chunk.partial and chunk.text and conv.stt_first_partial_ns is None:
                conv.stt_first_partial_ns = now
            text.add(chunk)
            if not chunk.partial:
                conv.stt_done_ns = now
        if conv.stt_done_ns is None:
            conv.stt_done_ns = time.perf_counter_ns()
        conv.transcript = text.text().strip()
        return
    if speech_start_ns is not None and utterance_s is not None:
        # the user speaks from speech_start_ns; the recogniser gets it all when they stop
        conv.speech_start_ns = speech_start_ns
        conv.end_of_speech_ns = speech_start_ns + round(utterance_s * 1e9)
        _sleep_until(conv.end_of_speech_ns)
    else:
        conv.end_of_speech_ns = time.perf_counter_ns()
    out = stt.synthesize(path)
    conv.stt_done_ns = time.perf_counter_ns()
    conv.transcript = (out.text or "").strip()


def _audio_of(out: Output | Chunk) -> tuple[np.ndarray, int]:
    if out.audio is None or out.sample_rate is None:
        raise TypeError("the TTS engine answered no audio")
    return np.asarray(out.audio, dtype=np.float32), int(out.sample_rate)


def _speak(tts: Adapted, text: str, conv: Conversation, stream: bool, keep: bool) -> None:
    """Speak one piece of text, each chunk onto the playback timeline as it arrives."""
    t0 = time.perf_counter_ns()
    if conv.tts_first_start_ns is None:
        conv.tts_first_start_ns = t0
    try:
        if stream and tts.stream is not None:
            for chunk in tts.stream(text):
                now = time.perf_counter_ns()
                audio, rate = _audio_of(chunk)  # type: ignore[arg-type]
                conv.playback.add(now, audio, rate)
                if keep:
                    conv.audio.append(audio)
        else:
            out = tts.synthesize(text)
            now = time.perf_counter_ns()
            audio, rate = _audio_of(out)
            conv.playback.add(now, audio, rate)
            if keep:
                conv.audio.append(audio)
    finally:
        conv.tts_busy_ns += time.perf_counter_ns() - t0


def _generate(
    llm: Adapted, prompt: str, conv: Conversation, on_sentence: Any | None = None
) -> None:
    """Ask the LLM; pieces timed as they arrive, sentences handed on as they complete."""
    splitter = SentenceSplitter()
    text = TextStream()
    conv.llm_start_ns = time.perf_counter_ns()
    if llm.stream is None:
        out = llm.synthesize(prompt)
        now = time.perf_counter_ns()
        conv.llm_first_token_ns = conv.llm_done_ns = now
        conv.answer = (out.text or "").strip()
        conv.tokens, conv.input_tokens = out.tokens, out.input_tokens
        conv.tokens_source = out.tokens_source
        if on_sentence is not None:
            for sentence in splitter.feed(conv.answer) + splitter.flush():
                _sentence_ready(conv, sentence, now, on_sentence)
        return
    for item in llm.stream(prompt):
        now = time.perf_counter_ns()
        chunk = as_chunk(item, llm.engine)
        if not isinstance(chunk, TextChunk):
            raise TypeError("the LLM streamed audio; it must answer text")
        text.add(chunk)
        if not chunk.text:
            continue
        if conv.llm_first_token_ns is None:
            conv.llm_first_token_ns = now
        conv.token_times_ns.append(now)
        if on_sentence is not None:
            for sentence in splitter.feed(chunk.text):
                _sentence_ready(conv, sentence, now, on_sentence)
    conv.llm_done_ns = now = time.perf_counter_ns()
    conv.answer = text.text().strip()
    conv.tokens, source = text.tokens()
    conv.tokens_source = source
    conv.input_tokens = text.input_tokens
    if on_sentence is not None:
        for sentence in splitter.flush():
            _sentence_ready(conv, sentence, now, on_sentence)


def _sentence_ready(conv: Conversation, sentence: str, now: int, on_sentence: Any) -> None:
    conv.sentences += 1
    if conv.llm_first_sentence_ns is None:
        conv.llm_first_sentence_ns = now
    on_sentence(sentence, now)


def converse(
    components: Components,
    path: Path,
    mode: Mode,
    *,
    keep_audio: bool = False,
    speech_start_ns: int | None = None,
    utterance_s: float | None = None,
) -> Conversation:
    """One conversation on the utterance at ``path``: every time and text, or the error.

    Alone (``speech_start_ns`` None) the user has just stopped speaking, or, to a recogniser
    that listens, starts now. Under load, the user starts speaking at ``speech_start_ns`` (the
    schedule's time, kept even when this thread started late) and speaks for ``utterance_s``.
    """
    conv = Conversation(mode=mode)
    stage = "stt"
    try:
        listen = mode == "streaming" and components.listens
        _recognise(components, path, conv, listen, speech_start_ns, utterance_s)
        stage = "llm"
        if mode == "sequential":
            _generate(components.llm, conv.transcript, conv)
            stage = "tts"
            conv.sentences = len(split_sentences(conv.answer))
            conv.tts_first_text_ns = time.perf_counter_ns()
            if conv.answer:
                _speak(components.tts, conv.answer, conv, stream=False, keep=keep_audio)
            conv.tts_done_ns = time.perf_counter_ns()
        else:
            _stream_answer(components, conv, keep_audio)
    except Exception as exc:  # any engine error: the conversation failed at this stage
        conv.failed(stage, exc)
    if conv.error is None and not conv.answer:
        conv.error = {"stage": "llm", "type": "EmptyAnswer", "message": "the LLM answered nothing"}
    if conv.error is None and conv.playback.first_audible_ns is None:
        conv.error = {"stage": "tts", "type": "SilentAnswer", "message": "no audible sample"}
    conv.ended_ns = time.perf_counter_ns()
    return conv


def _stream_answer(components: Components, conv: Conversation, keep_audio: bool) -> None:
    """LLM stream → sentences → TTS thread → playback, concurrently."""
    sentences: queue.Queue[str | None] = queue.Queue()

    def speaker() -> None:
        while True:
            sentence = sentences.get()
            if sentence is None:
                return
            if conv.error is not None:
                continue  # drain: a failure stops speech, not the queue
            try:
                _speak(components.tts, sentence, conv, stream=True, keep=keep_audio)
            except Exception as exc:
                conv.failed("tts", exc)

    def on_sentence(sentence: str, now: int) -> None:
        if conv.tts_first_text_ns is None:
            conv.tts_first_text_ns = now
        sentences.put(sentence)

    thread = threading.Thread(target=speaker, name="voxbench-pipeline-tts", daemon=True)
    thread.start()
    try:
        _generate(components.llm, conv.transcript, conv, on_sentence)
    except Exception as exc:
        conv.failed("llm", exc)
    finally:
        sentences.put(None)
        thread.join()
    conv.tts_done_ns = time.perf_counter_ns()
