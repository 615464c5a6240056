"""Prompt tokens and prices for ``phi4 estimate`` (pure: no Dagster, no openai).

Prompt tokens are counted with a tokenizer's chat template, as the server renders a request:
exact with the teacher's own tokenizer (the embedded teacher serves ``base_model``), an
approximation with the base model's for any other teacher. The tokenizer is read from a local
model directory only: nothing is downloaded. Prices come from the profile's ``teacher_prices``
(USD per 1M tokens); none are built in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

Messages = tuple[tuple[str, str], ...]  # ChatRequest.messages: (role, content) pairs


def chat_prompt_tokens(tokenizer, messages: Sequence[Mapping[str, str]]) -> int:
    """The prompt tokens of one chat: its chat template with the generation prompt."""
    ids = tokenizer.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=True)
    if hasattr(ids, "keys"):  # transformers 5: a BatchEncoding
        ids = ids["input_ids"]
    return len(ids)


class PromptCounter:
    """Counts prompt tokens with the tokenizer of ``model_dir`` (None: none at hand), loaded
    once when first needed. ``exact``: it is the teacher's own. ``note`` says which it is, or
    why prompts are not counted."""

    def __init__(self, model_dir: str | Path | None, exact: bool, note: str):
        self.model_dir, self.exact, self.note = model_dir, exact, note
        self._tokenizer = None
        self._counts: dict[Messages, int] = {}

    def count(self, messages: Messages) -> int | None:
        """Prompt tokens of one request's messages (None: no tokenizer)."""
        if self.model_dir is None:
            return None
        if messages not in self._counts:
            if self._tokenizer is None:
                try:
                    from transformers import AutoTokenizer

                    self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
                except Exception as e:  # noqa: BLE001 - any unreadable directory: say so, count nothing
                    self.model_dir, self.exact = None, False
                    self.note = f"prompt tokens not counted: no tokenizer readable in the base model directory ({e})"
                    return None
            self._counts[messages] = chat_prompt_tokens(
                self._tokenizer, [{"role": role, "content": content} for role, content in messages])
        return self._counts[messages]


def prompt_counter(base_model_dir: str | Path | None, teacher_embedded: bool, teacher: str) -> PromptCounter:
    """The counter for ``teacher``'s prompts: the base model's tokenizer, which is the teacher's
    own when the teacher is embedded (it serves ``base_model``), else an approximation."""
    if base_model_dir is None:
        return PromptCounter(None, False, "prompt tokens not counted: base_model is not materialized, "
                                          "so no tokenizer is at hand")
    if teacher_embedded:
        return PromptCounter(base_model_dir, True, "prompt tokens counted with the teacher's tokenizer")
    return PromptCounter(base_model_dir, False,
                         f"prompt tokens counted with the base model's tokenizer, an approximation for {teacher}")


def price_hint(model: str) -> str:
    return (f'cost: no price for {model} (set [profile.teacher_prices."{model}"] input/output in USD per '
            "1M tokens)")


def cost_usd(prices: Mapping[str, Mapping[str, float]], calls: Iterable[tuple[str, float, float]]
             ) -> tuple[float | None, list[str]]:
    """The cost of ``calls`` ((model, prompt tokens, completion tokens) each) at ``prices`` (model
    -> USD per 1M ``input`` / ``output`` tokens), and the models without a price (cost None then)."""
    tokens: dict[str, tuple[float, float]] = {}
    for model, prompt, completion in calls:
        total_prompt, total_completion = tokens.get(model, (0.0, 0.0))
        tokens[model] = (total_prompt + prompt, total_completion + completion)
    missing = [model for model in tokens if model not in prices]
    if missing:
        return None, missing
    return sum(prompt * prices[model]["input"] / 1e6 + completion * prices[model]["output"] / 1e6
               for model, (prompt, completion) in tokens.items()), []


def cost_summary(model: str, price: Mapping[str, float] | None, total: float, complete: bool,
                 upper_bound: bool) -> str:
    """The estimate's cost line: the total at the teacher's price, or how to set one."""
    if price is None:
        return price_hint(model)
    return (f"cost: {'at most ' if upper_bound else ''}{usd(total)}{'' if complete else ' + what is not counted (?)'}"
            f", at {usd(price['input'])} / {usd(price['output'])} per 1M prompt / completion tokens ({model}, "
            "teacher_prices)")


def usd(value: float) -> str:
    """$1.23, or two significant digits under ten cents ($0.0042)."""
    if value >= 0.1 or value == 0:
        return f"${value:,.2f}"
    return f"${value:.2g}" if value >= 1e-4 else "<$0.0001"
