"""``llamacpp`` MT engine: any GGUF through llama.cpp, with continuous multi-sequence batching.

Algorithm
    One context holds ``max_batch_size`` sequence slots plus ``prefix_slots`` cached prompt
    heads (``n_seq_max``; one unified KV buffer). A single decode thread owns the context:

    1. admit queued sequences into free slots, as the :class:`~voxmesh.mt.batcher.DynamicBatcher`
       allows (an idle engine waits up to ``max_wait_s`` for company; a busy one admits at once,
       so a new sequence joins the running ones at the next step: continuous batching);
    2. on admission, reuse the prompt head (few-shot examples, or chat header + instruction,
       the same for every sentence of a language pair): its KV state is computed once into a
       head sequence (LRU over ``prefix_slots``) and shared with ``llama_memory_seq_cp``, which
       in a unified cache only tags the cells; the sequence then prefills just its sentence;
    3. build one ``llama_batch``: the next token of every generating sequence, then prompt tokens
       of newly admitted ones up to ``n_batch``;
    4. ``llama_decode`` once; sample each sequence with its own sampler chain (penalties ->
       temperature -> top-k -> top-p -> dist, transformers' order; or greedy), detokenize
       incrementally (UTF-8 safe), stream the visible text, finish on an end-of-generation token,
       a stop string or the token budget.

    llama-cpp-python's high-level ``Llama`` runs one sequence at a time; ``max_batch_size=1`` is
    that baseline. Measured gains (benchmarks/reports/mt.md): the head cache cuts a few-shot
    prompt's prefill from ~117 to ~15 tokens; batching gives ~2x sentences/s at concurrency 4-16
    on 2 busy cores (the 262k-entry output layer keeps a step compute-bound, so it is not 8x).

    Prompts come from :mod:`voxmesh.mt.prompts`: the GGUF's chat template when it has one,
    else few-shot (base models, such as the packaged Gemma-3-270M). ``prompt_style`` overrides.

Limits
    One decode thread; cores are used by ggml's threads inside a step (``load(threads)``,
    ``set_threads``). On a host core budget (``core_lease``, set by the worker) the loop leases
    its threads while it has work, renews the lease as it runs (taking fewer threads when the
    budget says so) and returns it when idle. Greedy output can differ with batch composition (float rounding of batched
    kernels). A prompt longer than the per-sequence context fails that sequence only
    (``PayloadTooLarge``). Chat-style prompts parse special tokens, so a literal
    ``<start_of_turn>`` in user text is read as the token.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxmesh.clock import monotonic
from voxmesh.engines.base import Capabilities
from voxmesh.errors import ConfigError, EngineError, Overloaded, PayloadTooLarge, VoxmeshError
from voxmesh.mt.batcher import DynamicBatcher
from voxmesh.mt.languages import DEFAULT_LANGUAGES, LanguageSet
from voxmesh.mt.modelfile import packaged_model_path
from voxmesh.mt.prompts import (
    HYMT_SAMPLING,
    ChatFormat,
    Prompt,
    PromptStyle,
    SamplingParams,
    build_prompt,
    clean_output,
)
from voxmesh.mt.segment import segment
from voxmesh.mt.streaming import Handle, Piece, Start, StopScanner, aordered, ordered

if TYPE_CHECKING:
    from voxmesh.hostcores.busy import BusyLease

__all__ = ["Generation", "LlamaCppEngine", "packaged_model_path"]

log = logging.getLogger(__name__)

@dataclass(eq=False)
class Generation:
    """One sequence through the decode loop; ``wait`` blocks, ``cancel`` frees its slot."""

    tokens: list[int]
    params: SamplingParams
    stops: tuple[str, ...]
    max_new: int
    on_text: Callable[[str], None] | None = None
    on_done: Callable[[Generation], None] | None = None
    text: str = ""
    error: VoxmeshError | None = None
    n_generated: int = 0
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    # decode-loop state
    head: tuple[int, ...] = ()  # leading tokens shared with other prompts of the pair (KV reused)
    slot: int = -1
    n_past: int = 0
    pending: list[int] = field(default_factory=list)
    scan: StopScanner = field(default_factory=lambda: StopScanner(()))
    sampler: Any = None
    utf8: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))

    def wait(self, timeout: float | None = None) -> str:
        if not self.finished.wait(timeout):
            raise EngineError("generation timed out")
        if self.error is not None:
            raise self.error
        return self.text

    def cancel(self) -> None:
        self.cancelled = True


class LlamaCppEngine:
    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        prompt_style: str = "auto",
        max_batch_size: int = 8,
        max_wait_s: float = 0.005,
        n_ctx_per_seq: int = 1024,
        n_batch: int = 512,
        sampling: SamplingParams = HYMT_SAMPLING,
        max_segment_chars: int = 400,
        max_queue: int = 1024,
        prefix_slots: int = 4,
        min_prefix_tokens: int = 16,
        cache_dir: Path | None = None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self._model_path = Path(model_path) if model_path else None
        self._cache_dir = cache_dir
        self.languages = LanguageSet(languages)
        self._style_setting = prompt_style
        self.max_batch_size = max_batch_size
        self.n_ctx_per_seq = n_ctx_per_seq
        self.n_batch = max(n_batch, 32)
        self.sampling = sampling
        self.max_segment_chars = max_segment_chars
        self.prefix_slots = prefix_slots
        self.min_prefix_tokens = min_prefix_tokens
        # prompt head tokens -> the sequence id holding their KV state; insertion order = LRU
        self._heads: dict[tuple[int, ...], int] = {}
        self.prefix_hits = 0
        self._batcher: DynamicBatcher[Generation] = DynamicBatcher(
            max_batch_size, max_wait_s, max_queue=max_queue, clock=clock
        )
        self._clock = clock
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._model: Any = None
        self._ctx: Any = None
        self._vocab: Any = None
        self._mem: Any = None
        self._batch: Any = None
        self._free_slots: list[int] = []
        self._active: list[Generation] = []
        self.style = PromptStyle.FEWSHOT
        self.chat = ChatFormat()
        self.metadata: dict[str, str] = {}
        self.threads = 1
        self.steps = 0  # decode calls made (for tests and metrics)
        self.core_lease: BusyLease | None = None  # the host core budget (voxmesh.hostcores), set by the worker

    @classmethod
    def from_settings(cls, mt: Any, **overrides: Any) -> LlamaCppEngine:
        """Build from :class:`voxmesh.settings.MtSettings`; ``overrides`` win."""
        kw: dict[str, Any] = dict(
            model_path=mt.model_path,
            languages=mt.languages,
            prompt_style=mt.prompt_style,
            max_batch_size=mt.max_batch_size,
            max_wait_s=mt.max_wait_ms / 1000.0,
            n_ctx_per_seq=mt.n_ctx_per_seq,
            sampling=SamplingParams(
                temperature=mt.temperature,
                top_k=mt.top_k,
                top_p=mt.top_p,
                repeat_penalty=mt.repeat_penalty,
                max_new_tokens=mt.max_new_tokens,
                seed=mt.seed,
            ),
            max_segment_chars=mt.max_segment_chars,
            cache_dir=mt.model_cache_dir,
        )
        kw.update(overrides)
        return cls(**kw)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            self._model_path = packaged_model_path(self._cache_dir)
        return self._model_path

    @property
    def model_name(self) -> str:
        return self.metadata.get("general.name") or self.model_path.stem

    def load(self, threads: int) -> None:
        try:
            import llama_cpp as lc
        except ImportError as exc:
            raise ConfigError("llama-cpp-python is not installed (see the Makefile's CMAKE_ARGS)") from exc
        path = self.model_path
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist (mt.model_path)")
        self.threads = max(1, threads)
        # llama-cpp-python prints every native log line unless its logger says otherwise.
        native = logging.getLogger("llama-cpp-python")
        if native.level == logging.NOTSET:
            native.setLevel(logging.ERROR)
        lc.llama_backend_init()
        mparams = lc.llama_model_default_params()
        model = lc.llama_model_load_from_file(str(path).encode(), mparams)
        if not model:
            raise ConfigError(f"llama.cpp could not load {path} (not a GGUF model?)")
        cparams = lc.llama_context_default_params()
        cparams.n_seq_max = self.max_batch_size + self.prefix_slots
        cparams.n_ctx = self.n_ctx_per_seq * self.max_batch_size + 512 * self.prefix_slots
        cparams.n_batch = self.n_batch
        cparams.n_ubatch = self.n_batch
        cparams.n_threads = self.threads
        cparams.n_threads_batch = self.threads
        # One KV buffer for all sequences: copying a cached prompt head into a sequence then only
        # tags the cells with another sequence id (no data copy).
        cparams.kv_unified = True
        ctx = lc.llama_init_from_model(model, cparams)
        if not ctx:
            lc.llama_model_free(model)
            raise ConfigError(f"llama.cpp could not create a context for {path}")
        self._lc = lc
        self._model, self._ctx = model, ctx
        self._vocab = lc.llama_model_get_vocab(model)
        self._mem = lc.llama_get_memory(ctx)
        self._batch = lc.llama_batch_init(self.n_batch + self.max_batch_size, 0, 1)
        self.metadata = self._read_metadata()
        self.style, self.chat = self._pick_style()
        self._free_slots = list(range(self.max_batch_size))
        self._heads = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="llamacpp-decode", daemon=True)
        self._thread.start()
        log.info("llamacpp: loaded %s (style %s, %d slots, %d threads)", path.name, self.style.value,
                 self.max_batch_size, self.threads)

    def set_threads(self, threads: int) -> None:
        """Change the ggml thread count for the following steps (the worker's core budget)."""
        self.threads = max(1, threads)
        if self._ctx:
            self._lc.llama_set_n_threads(self._ctx, self.threads, self.threads)

    def warm_up(self) -> None:
        self.translate(["Good morning."], "en", "zh")

    def capabilities(self) -> Capabilities:
        return Capabilities(kind="mt", languages=self.languages.codes, streaming=True,
                            max_segment_chars=self.max_segment_chars)

    def close(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._ctx:
            lc = self._lc
            lc.llama_batch_free(self._batch)
            lc.llama_free(self._ctx)
            lc.llama_model_free(self._model)
            self._ctx = self._model = None

    def _read_metadata(self) -> dict[str, str]:
        lc = self._lc
        out: dict[str, str] = {}
        buf = ctypes.create_string_buffer(1 << 16)
        for i in range(lc.llama_model_meta_count(self._model)):
            n = lc.llama_model_meta_key_by_index(self._model, i, buf, len(buf))
            key = buf.value[: max(n, 0)].decode("utf-8", "replace")
            n = lc.llama_model_meta_val_str_by_index(self._model, i, buf, len(buf))
            if n >= 0:
                out[key] = buf.value.decode("utf-8", "replace")
        return out

    def _pick_style(self) -> tuple[PromptStyle, ChatFormat]:
        template = self.metadata.get("tokenizer.chat_template")
        arch = self.metadata.get("general.architecture", "")
        chat = ChatFormat(template=template, bos_token=self._piece(self._lc.llama_vocab_bos(self._vocab), True),
                          eos_token=self._piece(self._lc.llama_vocab_eos(self._vocab), True), architecture=arch)
        if self._style_setting != "auto":
            return PromptStyle(self._style_setting), chat
        # A chat template marks an instruction-tuned model; without one, assume a base model.
        return (PromptStyle.CHAT if template else PromptStyle.FEWSHOT), chat

    # -- tokens ----------------------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool, bos: bool = True) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        arr = (self._lc.llama_token * cap)()
        n = self._lc.llama_tokenize(self._vocab, data, len(data), arr, cap, bos, special)
        if n < 0:
            arr = (self._lc.llama_token * -n)()
            n = self._lc.llama_tokenize(self._vocab, data, len(data), arr, -n, bos, special)
        return list(arr[:n])

    def _piece_bytes(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._lc.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def _piece(self, token: int, special: bool = False) -> str:
        return self._piece_bytes(token, special).decode("utf-8", "replace") if token >= 0 else ""

    # -- submitting work -------------------------------------------------------------------

    def prompt_for(self, text: str, source: str, target: str, *, glossary: Mapping[str, str] | None = None,
                   context: str | None = None, style: PromptStyle | None = None) -> Prompt:
        return build_prompt(style or self.style, text, source, target, glossary=glossary, context=context,
                            chat=self.chat)

    def submit(self, prompt: Prompt, params: SamplingParams | None = None, *,
               on_text: Callable[[str], None] | None = None,
               on_done: Callable[[Generation], None] | None = None) -> Generation:
        """Queue one sequence; callbacks run on the decode thread (keep them short)."""
        if self._ctx is None:
            raise EngineError("engine not loaded: call load(threads) first")
        params = params or self.sampling
        special = prompt.style is PromptStyle.CHAT
        head = self.tokenize(prompt.text[: prompt.head], special=special) if prompt.head else []
        tokens = head + self.tokenize(prompt.text[prompt.head :], special=special, bos=not head)
        room = self.n_ctx_per_seq - len(tokens)
        if room < 8:
            raise PayloadTooLarge(f"segment needs {len(tokens)} prompt tokens; the model context per "
                                  f"sequence is {self.n_ctx_per_seq}: send shorter text", param="input")
        gen = Generation(tokens, params, prompt.stop, min(params.max_new_tokens, room), on_text, on_done)
        gen.scan = StopScanner(prompt.stop)
        gen.pending = list(tokens)
        if len(head) >= self.min_prefix_tokens and self.prefix_slots:
            gen.head = tuple(head)
        with self._cv:
            if not self._batcher.add(gen):
                raise Overloaded("the translation queue is full: retry later", retry_after=1.0)
            self._cv.notify()
        return gen

    def translate_segments(self, segments: Sequence[str], source: str, target: str, *,
                           glossary: Mapping[str, str] | None = None, context: str | None = None,
                           params: SamplingParams | None = None,
                           on_text: Callable[[int, str], None] | None = None,
                           on_done: Callable[[int, Handle], None] | None = None) -> list[Generation]:
        gens: list[Generation] = []
        try:
            for i, seg in enumerate(segments):
                prompt = self.prompt_for(seg, source, target, glossary=glossary, context=context)
                cb = (lambda t, i=i: on_text(i, t)) if on_text else None
                done = (lambda g, i=i: on_done(i, g)) if on_done else None
                gens.append(self.submit(prompt, params, on_text=cb, on_done=done))
        except BaseException:
            for g in gens:
                g.cancel()
            raise
        return gens

    def translate(self, texts: list[str], source: str, target: str, *,
                  glossary: Mapping[str, str] | None = None, context: str | None = None,
                  stream: bool = False, params: SamplingParams | None = None) -> list[str] | Iterator[Piece]:
        """Translate each text (split into sentences, decoded together, joined back).

        ``stream=True`` returns an iterator of :class:`Piece` in text order."""
        if stream:
            return self._stream(texts, source, target, glossary, context, params)
        plans = [segment(t, self.max_segment_chars) for t in texts]
        flat = [s for p in plans for s in p.segments]
        gens = self.translate_segments(flat, source, target, glossary=glossary, context=context, params=params)
        outs = [clean_output(seg, g.wait(), g.stops) for seg, g in zip(flat, gens, strict=True)]
        result, k = [], 0
        for p in plans:
            n = len(p.segments)
            result.append(p.join(outs[k : k + n], source, target))
            k += n
        return result

    def _start_fn(self, segments: Sequence[str], source: str, target: str, glossary: Mapping[str, str] | None,
                  context: str | None, params: SamplingParams | None) -> Start:
        def start(on_text: Callable[[int, str], None], on_done: Callable[[int, Handle], None]) -> list[Generation]:
            return self.translate_segments(segments, source, target, glossary=glossary, context=context,
                                           params=params, on_text=on_text, on_done=on_done)

        return start

    def _stream(self, texts: list[str], source: str, target: str, glossary: Mapping[str, str] | None,
                context: str | None, params: SamplingParams | None) -> Iterator[Piece]:
        plans = [segment(t, self.max_segment_chars) for t in texts]
        owner = [i for i, p in enumerate(plans) for _ in p.segments]
        flat = [s for p in plans for s in p.segments]
        for k, text in ordered(self._start_fn(flat, source, target, glossary, context, params)):
            yield Piece(owner[k], text)

    # async adapters: the event loop never blocks on the decode thread ----------------------

    async def atranslate(self, segments: Sequence[str], source: str, target: str, *,
                         glossary: Mapping[str, str] | None = None, context: str | None = None,
                         params: SamplingParams | None = None) -> list[str]:
        """Translate sentence-sized segments as separate sequences (no splitting here)."""
        parts: list[list[str]] = [[] for _ in segments]
        async for k, text in aordered(self._start_fn(segments, source, target, glossary, context, params)):
            parts[k].append(text)
        stops = self.prompt_for("", source, target).stop
        return [clean_output(s, "".join(p), stops) for s, p in zip(segments, parts, strict=True)]

    async def astream(self, segments: Sequence[str], source: str, target: str, *,
                      glossary: Mapping[str, str] | None = None, context: str | None = None,
                      params: SamplingParams | None = None) -> AsyncIterator[Piece]:
        """Pieces of each segment in segment order; ``Piece.index`` is the segment index."""
        async for k, text in aordered(self._start_fn(segments, source, target, glossary, context, params)):
            yield Piece(k, text)

    # -- the decode loop -------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cv:
                if self._stopping:
                    break
                admit = self._batcher.take(len(self._free_slots), busy=bool(self._active))
                if not admit and not self._active:
                    if self.core_lease is not None:
                        self.core_lease.idle()
                    deadline = self._batcher.deadline()
                    timeout = None if deadline is None else max(0.0, deadline - self._clock())
                    self._cv.wait(timeout)
                    continue
            try:
                if self.core_lease is not None and (cores := self.core_lease.hold()) is not None:
                    self.set_threads(cores)
                for gen in admit:
                    self._start(gen)
                self._step()
            except Exception as exc:  # a bad step fails its sequences, never the loop
                log.exception("llamacpp: decode step failed")
                for gen in list(self._active):
                    self._finish(gen, EngineError(f"llama.cpp decode failed: {exc}"))
        for gen in list(self._active):
            self._finish(gen, EngineError("engine closed"))
        if self.core_lease is not None:
            self.core_lease.idle()
        with self._cv:
            while len(self._batcher):
                for gen in self._batcher.take(len(self._batcher), busy=True):
                    gen.error = EngineError("engine closed")
                    gen.finished.set()

    def _start(self, gen: Generation) -> None:
        lc = self._lc
        gen.slot = self._free_slots.pop()
        lc.llama_memory_seq_rm(self._mem, gen.slot, -1, -1)
        if gen.head:
            seq = self._head_seq(gen.head)
            lc.llama_memory_seq_cp(self._mem, seq, gen.slot, -1, -1)
            gen.n_past = len(gen.head)
            del gen.pending[: len(gen.head)]
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        p = gen.params
        if p.greedy:
            if p.repeat_penalty != 1.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_penalties(
                    lc.llama_vocab_n_tokens(self._vocab), 64, p.repeat_penalty, 0.0, 0.0))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            # HY-MT's order (transformers): repetition penalty, temperature, top-k, top-p.
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_penalties(
                lc.llama_vocab_n_tokens(self._vocab), 64, p.repeat_penalty, 0.0, 0.0))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(p.temperature))
            if p.top_k > 0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(p.top_k))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(p.top_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(p.seed))
        gen.sampler = chain
        self._active.append(gen)

    def _head_seq(self, head: tuple[int, ...]) -> int:
        """The sequence id holding ``head``'s KV state, computing it on a miss (LRU eviction)."""
        seq = self._heads.pop(head, None)
        if seq is not None:
            self.prefix_hits += 1
            self._heads[head] = seq  # most recently used last
            return seq
        if len(self._heads) >= self.prefix_slots:
            seq = self._heads.pop(next(iter(self._heads)))  # least recently used
        else:
            seq = self.max_batch_size + len(self._heads)
        lc, batch = self._lc, self._batch
        lc.llama_memory_seq_rm(self._mem, seq, -1, -1)
        for start in range(0, len(head), self.n_batch):
            chunk = head[start : start + self.n_batch]
            for j, tok in enumerate(chunk):
                batch.token[j] = tok
                batch.pos[j] = start + j
                batch.n_seq_id[j] = 1
                batch.seq_id[j][0] = seq
                batch.logits[j] = False
            batch.n_tokens = len(chunk)
            rc = lc.llama_decode(self._ctx, batch)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc} while caching a prompt head")
        self._heads[head] = seq
        return seq

    def _step(self) -> None:
        lc, batch = self._lc, self._batch
        for gen in [g for g in self._active if g.cancelled]:
            self._finish(gen, None)
        if not self._active:
            return
        n = 0
        outputs: list[tuple[Generation, int]] = []

        def add(tok: int, gen: Generation, logits: bool) -> None:
            nonlocal n
            batch.token[n] = tok
            batch.pos[n] = gen.n_past
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = gen.slot
            batch.logits[n] = logits
            if logits:
                outputs.append((gen, n))
            gen.n_past += 1
            n += 1

        for gen in self._active:  # generating sequences: one token each
            if not gen.pending and gen.n_generated > 0:
                add(gen.tokens[-1], gen, True)
        budget = self.n_batch
        for gen in self._active:  # prefill, as much as fits
            if gen.pending and budget > 0:
                take = gen.pending[:budget]
                del gen.pending[: len(take)]
                budget -= len(take)
                for j, tok in enumerate(take):
                    add(tok, gen, not gen.pending and j == len(take) - 1)
        batch.n_tokens = n
        rc = lc.llama_decode(self._ctx, batch)
        self.steps += 1
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        for gen, idx in outputs:
            tok = lc.llama_sampler_sample(gen.sampler, self._ctx, idx)
            self._accept(gen, tok)

    def _accept(self, gen: Generation, tok: int) -> None:
        gen.n_generated += 1
        if self._lc.llama_vocab_is_eog(self._vocab, tok):
            self._say(gen, gen.scan.feed(gen.utf8.decode(b"", final=True)))
            self._finish(gen, None)
            return
        gen.tokens.append(tok)
        self._say(gen, gen.scan.feed(gen.utf8.decode(self._piece_bytes(tok))))
        if gen.scan.stopped or gen.n_generated >= gen.max_new:
            self._finish(gen, None)

    @staticmethod
    def _say(gen: Generation, text: str) -> None:
        if text and gen.on_text is not None and not gen.cancelled:
            gen.on_text(text)

    def _finish(self, gen: Generation, error: VoxmeshError | None) -> None:
        if error is None:
            self._say(gen, gen.scan.flush())
        gen.text, gen.error = gen.scan.text, error
        if gen in self._active:
            self._active.remove(gen)
            self._lc.llama_memory_seq_rm(self._mem, gen.slot, -1, -1)
            self._free_slots.append(gen.slot)
            if gen.sampler is not None:
                self._lc.llama_sampler_free(gen.sampler)
                gen.sampler = None
        gen.finished.set()
        if gen.on_done is not None:
            gen.on_done(gen)
