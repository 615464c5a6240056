"""SFT replies greedy or sampled: how many survive ``sft.data.sft_target`` (a data measurement).

    .venv/bin/python bench/sft_reply_decoding.py [--model DIR] [--chats 48] [--benign 16] [--tokens 160]

The embedded teacher writes SFT's chat replies and benign answers at temperature 0.7 under
continuous batching, which no request seed makes repeatable, so two fresh runs train on
different SFT data. Greedy replies would repeat; the question is what they cost. This asks the
same model in process (the teacher's weights, ``transformers.generate``) for one reply to each of
the first ``--chats`` chat prompts and ``--benign`` benign look-alikes, greedy and at 0.7, with the
SFT data's reply limit, and counts what ``sft_target`` keeps or drops (and benign replies that
refuse, which ``sft_dataset`` drops too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, base_model_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--chats", type=int, default=48)
    parser.add_argument("--benign", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from phi4_assets.core.refusal import declines, is_refusal
    from phi4_assets.sft.data import SFT_RESPONSE_TEMPERATURE, sft_target

    torch.set_num_threads(args.threads)
    model_dir = base_model_dir(args.model)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    seeds = REPO / "data" / "seeds"
    chats = sorted((json.loads(line) for line in (seeds / "chat.jsonl").open()), key=lambda r: r["id"])[:args.chats]
    benign = [r for r in map(json.loads, (seeds / "safety.jsonl").open()) if r["kind"] == "benign"][:args.benign]
    prompts = [r["prompt"] for r in chats] + [r["prompt"] for r in benign]
    kinds = ["chat"] * len(chats) + ["benign"] * len(benign)

    print(f"{model_dir}: {len(chats)} chat prompts, {len(benign)} benign, up to {args.tokens} tokens, "
          f"{args.threads} threads")
    print("| decoding | chat kept | chat dropped (why) | benign kept | benign dropped (why) | wall s |")
    print("|---|---|---|---|---|---|")
    for temperature in (0.0, SFT_RESPONSE_TEMPERATURE):
        started, tally = time.monotonic(), Counter()
        for i in range(0, len(prompts), 16):
            texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True) for p in prompts[i:i + 16]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(i)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=args.tokens, do_sample=temperature > 0,
                                     temperature=temperature or None, top_p=None, top_k=None,
                                     pad_token_id=tok.pad_token_id)
            for row, kind in zip(out[:, enc["input_ids"].shape[1]:].tolist(), kinds[i:i + 16]):
                ended = tok.eos_token_id in row
                text = tok.decode(row[:row.index(tok.eos_token_id)] if ended else row, skip_special_tokens=True)
                kept, why = sft_target(text, truncated=not ended)
                if kept and kind == "benign" and (is_refusal(kept) or declines(kept)):
                    why = "refused_benign_prompt"
                tally[(kind, why or "kept")] += 1

        def dropped(kind: str) -> str:
            reasons = {why: n for (k, why), n in tally.items() if k == kind and why != "kept"}
            return f"{sum(reasons.values())} ({', '.join(f'{w} {n}' for w, n in sorted(reasons.items())) or '-'})"

        name = "greedy" if temperature == 0 else f"temperature {temperature}"
        print(f"| {name} | {tally[('chat', 'kept')]} | {dropped('chat')} | {tally[('benign', 'kept')]} | "
              f"{dropped('benign')} | {time.monotonic() - started:.0f} |")


if __name__ == "__main__":
    main()
