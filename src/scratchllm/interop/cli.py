"""`scratchllm import hf` and `scratchllm export hf`: Hugging Face checkpoints in and out.

    scratchllm import hf path/to/hf_model --out runs/imported
    scratchllm export hf runs/imported --out exported/
    scratchllm export gguf runs/imported --out model.gguf --type q8_0      # for llama.cpp / Ollama
    python -c "from transformers import AutoModelForCausalLM as M; print(M.from_pretrained('exported'))"
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    imp = subparsers.add_parser("import", help="convert a Hugging Face checkpoint into a run directory")
    isub = imp.add_subparsers(dest="import_format", metavar="FORMAT", required=True)
    h = isub.add_parser("hf", help="config.json + *.safetensors (GPT-2, Llama, Mistral, Qwen2, Qwen3) [+ tokenizer.json]")
    h.add_argument("hf_dir", help="Hugging Face model directory (e.g. from huggingface-cli download)")
    h.add_argument("--out", required=True, help="run directory to write (loadable with scratchllm.load)")
    h.add_argument("--no-tokenizer", action="store_true", help="skip tokenizer.json even if present")
    h.add_argument("--force", action="store_true", help="replace --out even if it is not empty")
    h.add_argument("--base", default=None, help="a PEFT adapter's HF base directory (default: its base_model_name_or_path)")
    h.set_defaults(func=cmd_import_hf)

    exp = subparsers.add_parser("export", help="convert a run directory into a Hugging Face checkpoint")
    esub = exp.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    e = esub.add_parser("hf", help="a directory AutoModelForCausalLM / AutoTokenizer.from_pretrained load")
    e.add_argument("run_dir", help="run directory (from training or import)")
    e.add_argument("--out", required=True, help="Hugging Face directory to write")
    e.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    e.add_argument("--force", action="store_true", help="replace --out even if it is not empty")
    e.set_defaults(func=cmd_export_hf)
    g = esub.add_parser("gguf", help="one .gguf file for llama.cpp / Ollama (GPT-2 or Llama style shapes)")
    g.add_argument("run_dir", help="run directory (full precision)")
    g.add_argument("--out", required=True, help="the .gguf file to write")
    g.add_argument("--type", default="f16", dest="gguf_type", help="f16 (default), q8_0 or q4_0 (llama.cpp's block formats)")
    g.add_argument("--step", type=int, default=None, help="checkpoint step (default: the newest)")
    g.set_defaults(func=cmd_export_gguf)


def cmd_import_hf(args) -> int:
    from scratchllm.interop.hf import import_hf
    from scratchllm.utils.outdir import check_output_dir

    check_output_dir(args.out, force=args.force)  # the output replaces the directory: nothing in it is ours
    if (Path(args.hf_dir) / "adapter_config.json").is_file():   # a PEFT adapter: base + LoRA run
        from scratchllm.interop.peft import import_peft

        out = import_peft(args.hf_dir, args.out, base=args.base)
        print(f"imported PEFT adapter {args.hf_dir} -> LoRA run {out} (its base in {out}/base)")
        return 0
    out = import_hf(args.hf_dir, args.out, tokenizer=not args.no_tokenizer)
    print(f"imported {args.hf_dir} -> {out} (load it with scratchllm.load('{out}'))")
    return 0


def cmd_export_hf(args) -> int:
    from scratchllm.interop.hf import export_hf
    from scratchllm.utils.outdir import check_output_dir

    from scratchllm.train.finetune import is_lora_run

    check_output_dir(args.out, force=args.force)  # the output replaces the directory: nothing in it is ours
    if is_lora_run(args.run_dir):   # the base to --out, the adapter to --out/adapter in PEFT's layout
        from scratchllm.interop.peft import export_peft

        out = export_peft(args.run_dir, args.out, step=args.step)
        print(f"exported {args.run_dir} -> {out} (base) + {out}/adapter (PEFT: "
              f"PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained('{out}'), '{out}/adapter'))")
        return 0
    out = export_hf(args.run_dir, args.out, step=args.step)
    print(f"exported {args.run_dir} -> {out} (load it with AutoModelForCausalLM.from_pretrained('{out}'))")
    return 0


def cmd_export_gguf(args) -> int:
    from scratchllm.inference.gguf import export_gguf

    info = export_gguf(args.run_dir, args.out, args.gguf_type, step=args.step)
    print(f"exported {args.run_dir} -> {args.out} ({info['arch']} architecture, {args.gguf_type}, "
          f"{info['bytes'] / 1e6:.2f} MB, pre-tokenizer {info['pre_tokenizer']}); run it with llama.cpp: "
          f"llama-cli -m {args.out}")
    return 0
