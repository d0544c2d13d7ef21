
use builtin;
use str;

set edit:completion:arg-completer[swift] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'swift'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'swift'= {
            cand --color 'When to use colours (NO_COLOR is respected under `auto`)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Say more (repeat for more detail)'
            cand --verbose 'Say more (repeat for more detail)'
            cand --no-progress 'Do not draw progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand download 'Fetch a model or dataset from the Hugging Face Hub or ModelScope'
            cand estimate-vram 'Predict the peak memory of a job and decide whether it fits'
            cand estimate 'Predict the peak memory of a job and decide whether it fits'
            cand infer 'Generate from the terminal, or serve an OpenAI-compatible API'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'swift;download'= {
            cand --model 'Model id (same as the positional id)'
            cand --dataset 'Dataset short name (see --list-datasets) or dataset id'
            cand --hub 'Which hub (default: the id''s `hf::`/`ms::` prefix, else USE_HF, else hf)'
            cand --repo-type 'Repository type of the positional id'
            cand --revision 'Branch, tag or commit (default main on hf, master on ModelScope)'
            cand --include 'Only files matching this glob (repeatable; `*` crosses `/`)'
            cand --exclude 'Skip files matching this glob (repeatable)'
            cand --local-dir 'Write plain files into DIR instead of the cache'
            cand --cache-dir 'Cache root (default HF_HUB_CACHE, or MODELSCOPE_CACHE for ModelScope)'
            cand --token 'Access token (default HF_TOKEN / MODELSCOPE_API_TOKEN)'
            cand --endpoint 'Hub endpoint URL (default HF_ENDPOINT / MODELSCOPE_DOMAIN)'
            cand --max-workers 'Files fetched at once'
            cand --connections 'Byte-range connections per large file'
            cand --part-size-mb 'Smallest byte range per connection, in MiB'
            cand --registry 'A user dataset registry file (default SWIFT_DATASET_REGISTRY or ~/.config/swift/datasets.json)'
            cand --color 'When to use colours (NO_COLOR is respected under `auto`)'
            cand --offline 'Resolve from the cache only (also HF_HUB_OFFLINE=1)'
            cand --force 'Download again even when the cache has the files'
            cand --json 'Print the result (snapshot path and files) as JSON on stdout'
            cand --list-datasets 'Print the dataset registry and exit'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Say more (repeat for more detail)'
            cand --verbose 'Say more (repeat for more detail)'
            cand --no-progress 'Do not draw progress bars'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'swift;estimate-vram'= {
            cand --model 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found'
            cand --method 'What the job is; `auto` lets the planner choose LoRA or QLoRA'
            cand --dtype 'Weight and activation dtype; `auto` picks bf16 where the device has it'
            cand --quant-bits 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8'
            cand --batch-size 'Sequences per device per step (default: the planner''s choice under `--method auto`, else 1)'
            cand --seq-len 'Tokens per sequence (training) or prompt tokens (inference)'
            cand --max-length 'Tokens per sequence (training) or prompt tokens (inference)'
            cand --max-new-tokens 'Inference: tokens generated after the prompt'
            cand --lora-rank 'LoRA rank'
            cand --target-modules 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear'
            cand --gradient-checkpointing 'Recompute activations in backward (default: on; under `--method auto` only when needed)'
            cand --optimizer 'Optimizer'
            cand --attention 'Attention implementation (eager materialises the score matrix)'
            cand --lora-dropout 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer''s input)'
            cand --loss-impl 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers'' default fp32 upcast)'
            cand --gpus 'Number of GPUs the job is spread over'
            cand --zero 'DeepSpeed ZeRO stage for multi-GPU runs'
            cand --effective-batch 'Sequences per optimizer step the planner aims for under `--method auto`'
            cand --budget 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)'
            cand --color 'When to use colours (NO_COLOR is respected under `auto`)'
            cand --json 'Print a JSON object instead of a table'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Say more (repeat for more detail)'
            cand --verbose 'Say more (repeat for more detail)'
            cand --no-progress 'Do not draw progress bars'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'swift;estimate'= {
            cand --model 'A model folder, a config.json, a .gguf file (only its header is read), or a hub id (`org/name`: only config.json is fetched). Without it, print the devices found'
            cand --method 'What the job is; `auto` lets the planner choose LoRA or QLoRA'
            cand --dtype 'Weight and activation dtype; `auto` picks bf16 where the device has it'
            cand --quant-bits 'Quantize the frozen linear weights: 4 (NF4, QLoRA) or 8'
            cand --batch-size 'Sequences per device per step (default: the planner''s choice under `--method auto`, else 1)'
            cand --seq-len 'Tokens per sequence (training) or prompt tokens (inference)'
            cand --max-length 'Tokens per sequence (training) or prompt tokens (inference)'
            cand --max-new-tokens 'Inference: tokens generated after the prompt'
            cand --lora-rank 'LoRA rank'
            cand --target-modules 'LoRA target modules, comma separated (q_proj,v_proj,...) or all-linear'
            cand --gradient-checkpointing 'Recompute activations in backward (default: on; under `--method auto` only when needed)'
            cand --optimizer 'Optimizer'
            cand --attention 'Attention implementation (eager materialises the score matrix)'
            cand --lora-dropout 'LoRA dropout probability (above 0, peft keeps a dropped copy of each wrapped layer''s input)'
            cand --loss-impl 'Cross-entropy over the vocabulary: chunked (logits kept 16-bit, fp32 a chunk at a time) or full (transformers'' default fp32 upcast)'
            cand --gpus 'Number of GPUs the job is spread over'
            cand --zero 'DeepSpeed ZeRO stage for multi-GPU runs'
            cand --effective-batch 'Sequences per optimizer step the planner aims for under `--method auto`'
            cand --budget 'Memory available to the job: a size (24GiB, 16GB, 80G) or `auto` (the free memory of the best GPU, else available RAM)'
            cand --color 'When to use colours (NO_COLOR is respected under `auto`)'
            cand --json 'Print a JSON object instead of a table'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Say more (repeat for more detail)'
            cand --verbose 'Say more (repeat for more detail)'
            cand --no-progress 'Do not draw progress bars'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'swift;infer'= {
            cand --model 'A model folder (config.json + safetensors + tokenizer), a .gguf file, or a hub id (`org/name`, `hf::org/name`, `ms::org/name`) fetched first'
            cand --adapter 'A PEFT LoRA adapter folder applied without merging (repeatable)'
            cand -p 'The prompt (otherwise read from stdin when it is not a terminal)'
            cand --prompt 'The prompt (otherwise read from stdin when it is not a terminal)'
            cand --system 'A system message for the chat template'
            cand --template 'Use a built-in chat template instead of the model''s (chatml, llama3, mistral, qwen, ...)'
            cand --max-new-tokens 'Most tokens to generate (default: until the end of the context window)'
            cand --temperature 'Sampling temperature; 0 = greedy. Default: the model''s generation_config.json when it asks for sampling, else 0 (greedy)'
            cand --top-k 'Sample only among the K most likely tokens (0 = off; default: generation_config.json, else off)'
            cand --top-p 'Nucleus sampling: the smallest set of tokens with mass >= P (1 = off; default: generation_config.json, else off)'
            cand --min-p 'Drop tokens less likely than P times the most likely one (0 = off)'
            cand --repetition-penalty 'Penalise tokens already seen, as transformers does (1 = off; default: generation_config.json, else off)'
            cand --seed 'Seed of the sampler: the same seed gives the same text'
            cand --stop 'Stop when the text contains this string (repeatable; the string is not printed)'
            cand -t 'CPU threads for the model (default: all cores)'
            cand --threads 'CPU threads for the model (default: all cores)'
            cand --color 'When to use colours (NO_COLOR is respected under `auto`)'
            cand --raw 'Feed the prompt as is, without the chat template'
            cand --ignore-eos 'Do not stop at end-of-sequence tokens (for benchmarks)'
            cand --json 'Print one JSON object (text, finish_reason, token counts, speed) instead of streaming'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Say more (repeat for more detail)'
            cand --verbose 'Say more (repeat for more detail)'
            cand --no-progress 'Do not draw progress bars'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'swift;completions'= {
            cand --color 'When to use colours (NO_COLOR is respected under `auto`)'
            cand -q 'Print only results and errors'
            cand --quiet 'Print only results and errors'
            cand -v 'Say more (repeat for more detail)'
            cand --verbose 'Say more (repeat for more detail)'
            cand --no-progress 'Do not draw progress bars'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'swift;help'= {
            cand download 'Fetch a model or dataset from the Hugging Face Hub or ModelScope'
            cand estimate-vram 'Predict the peak memory of a job and decide whether it fits'
            cand infer 'Generate from the terminal, or serve an OpenAI-compatible API'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'swift;help;download'= {
        }
        &'swift;help;estimate-vram'= {
        }
        &'swift;help;infer'= {
        }
        &'swift;help;completions'= {
        }
        &'swift;help;help'= {
        }
    ]
    $completions[$command]
}
